"""/auth/*: the web page's sign-in with the OpenID provider, its session and sign-out.

GET /auth/login and GET /auth/callback are browser navigations (redirects, not JSON API calls,
so they are not in the OpenAPI document); GET /auth/config (unauthenticated: only whether
sign-in with a provider is offered), GET /auth/session and POST /auth/logout are JSON.
"""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, json, redirect, request, url_for
from pydantic import BaseModel, Field
from werkzeug.wrappers import Response as Redirect

from app.api import cookies
from app.api.endpoint import db, endpoint, principal
from app.db import scope
from app.errors import BadRequest, NotFound
from app.providers.oidc_login import OIDCLogin
from app.runtime import runtime
from app.services import web_sessions

bp = Blueprint("auth", __name__, url_prefix="/auth")


class AuthConfig(BaseModel):
    oidc: bool = Field(description="whether the web page can sign in with an OpenID provider")


class SessionInfo(BaseModel):
    id: int
    name: str
    role: Literal["admin", "user"]
    csrf_token: str | None = Field(
        description="send it as X-CSRF-Token with every write made with the session cookie"
        " (null: this request used a bearer token, which needs none)"
    )


class SignedOut(BaseModel):
    end_session_url: str | None = Field(
        description="the provider's end-session page to send the browser to, if it has one"
    )


def _login() -> OIDCLogin:
    login = runtime().oidc_login
    if login is None:
        raise NotFound("sign-in with an OpenID provider is not configured (POSTRAG_OIDC_ISSUER)")
    return login


def own_url(endpoint_name: str) -> str:
    """An absolute URL of postrag's, from the request's scheme and host (as the browser sees
    them when a proxy forwards Host and X-Forwarded-Proto to a server that trusts it)."""
    url = url_for(endpoint_name, _external=True)
    if len(url) > 2000 or not url.isascii() or not url.isprintable():
        raise BadRequest("the request's Host makes no usable address for the sign-in")
    return url


@bp.get("/config")
@endpoint(
    summary="Whether the web page offers sign-in with an OpenID provider (no token needed)",
    tag="auth",
    auth="public",
    response=AuthConfig,
)
def config() -> AuthConfig:
    return AuthConfig(oidc=runtime().oidc_login is not None)


@bp.get("/login")
def login() -> Redirect:
    """Sends the browser to the provider, bound to it by a short-lived cookie."""
    client = _login()
    conn = db()
    with scope.acting_as_owner(conn):  # nobody is known yet
        started = web_sessions.begin(conn, client, own_url("auth.callback"))
    response = redirect(started.url, code=303)
    lifetime = int(web_sessions.LOGIN_LIFETIME.total_seconds())
    cookies.put(response, cookies.LOGIN, started.browser_secret, max_age=lifetime)
    return response


@bp.get("/callback")
def callback() -> Redirect:
    """The provider's redirect back: checks it, signs the user in, and opens the web page."""
    client = _login()
    back = web_sessions.Callback(
        state=request.args.get("state"),
        code=request.args.get("code"),
        error=request.args.get("error"),
        browser_secret=cookies.read(cookies.LOGIN),
    )
    conn = db()
    with scope.acting_as_owner(conn):  # the user is provisioned as a JWT bearer's would be
        rt = runtime()
        _, secret = web_sessions.complete(conn, client, rt.settings, back, rt.keyring)
    response = redirect(url_for("web.index"), code=303)
    cookies.clear(response, cookies.LOGIN)
    cookies.put(response, cookies.SESSION, secret, max_age=runtime().settings.session_hours * 3600)
    return response


@bp.get("/session")
@endpoint(summary="Who is signed in, and the CSRF token", tag="auth", response=SessionInfo)
def session() -> SessionInfo:
    who = principal()
    secret = cookies.read(cookies.SESSION) if who.session_id is not None else None
    csrf = web_sessions.csrf_token(secret) if secret else None
    info = {"id": who.user_id, "name": who.name, "role": who.role, "csrf_token": csrf}
    return SessionInfo.model_validate(info)


@bp.post("/logout")
@endpoint(
    summary="Sign out: ends the web session (and names the provider's end-session page)",
    tag="auth",
    response=SignedOut,
    errors=(400,),
)
def logout() -> Response:
    web_sessions.end(db(), principal())
    login = runtime().oidc_login
    back_to = own_url("web.index")
    body = SignedOut(end_session_url=login.end_session_url(back_to) if login else None)
    response = Response(json.dumps(body.model_dump()), mimetype="application/json")
    cookies.clear(response, cookies.SESSION)
    return response
