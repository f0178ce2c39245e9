"""The HTTP transport of MCP sessions: each response's body is bounded.

The SDK reads a JSON answer whole, and an SSE answer event by event; neither bounds the total.
Bodies are asked for uncompressed (and a compressed one is refused) so that the bytes counted are
the bytes the SDK gets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2


class TooLarge(Exception):
    """A response's body passed the session's cap."""


class CappedTransport(httpx2.AsyncBaseTransport):
    """`inner`, with every response body cut off by TooLarge past `most` bytes."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, most: int) -> None:
        self._inner, self._most = inner, most
        # The SDK reports a body cut off as a closed connection: why is kept here.
        self.exceeded: TooLarge | None = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["Accept-Encoding"] = "identity"
        response = await self._inner.handle_async_request(request)
        if response.headers.get("Content-Encoding", "identity").lower() != "identity":
            await response.aclose()
            self.exceeded = TooLarge("a compressed body, which was not asked for")
            raise self.exceeded
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_Capped(response.stream, self._most, self),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Capped(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, most: int, owner: CappedTransport) -> None:
        self._inner, self._most, self._owner = inner, most, owner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._inner:
            seen += len(chunk)
            if seen > self._most:
                self._owner.exceeded = TooLarge(f"an answer of more than {self._most} bytes")
                raise self._owner.exceeded
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()
