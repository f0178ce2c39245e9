"""HTTP layer: parse the request, call one service, serialize the answer."""
