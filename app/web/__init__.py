"""The web page at / (static files; it calls the same JSON API as everyone else)."""
