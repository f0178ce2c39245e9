"""The web page's cookies: its session, and the binding of a sign-in to the browser starting it.

Both are HttpOnly, SameSite=Lax (the provider's redirect back is a top-level GET, which Lax lets
through; cross-site subrequests and form posts carry neither), path `/`, and Secure with the
`__Host-` prefix (no Domain, so no sibling host can set or shadow them), except on plain http
to a loopback address, where a browser would not keep a Secure cookie.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request
from werkzeug.wrappers import Response

SESSION = "postrag_session"
LOGIN = "postrag_login"
CONSENT = "postrag_consent"  # binds an Atlassian consent to the browser that started it
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def secure() -> bool:
    """Whether this request's cookies are Secure: always, but on plain http to loopback."""
    return not (request.scheme == "http" and urlsplit(request.host_url).hostname in _LOOPBACK)


def name(base: str) -> str:
    return f"__Host-{base}" if secure() else base


def read(base: str) -> str | None:
    return request.cookies.get(name(base)) or None


def put(response: Response, base: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name(base),
        value,
        max_age=max_age,
        path="/",
        secure=secure(),
        httponly=True,
        samesite="Lax",
    )


def clear(response: Response, base: str) -> None:
    response.delete_cookie(name(base), path="/", secure=secure(), httponly=True, samesite="Lax")
