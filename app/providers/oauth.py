"""OAuth 2.0 token endpoint client: the authorization_code (with PKCE) and refresh_token grants
(RFC 6749 sections 4.1.3 and 6, RFC 7636)."""

from __future__ import annotations

from typing import Any

import httpx
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from app.errors import BadGateway, BadRequest, Conflict, GatewayTimeout, ServiceUnavailable
from app.providers.oidc_login import error_code
from app.settings import OAuthClient

# RFC 6749 says 400 (401 for client errors); Atlassian answers a refused grant with 403.
_REFUSED = (400, 401, 403)


class TokenResponse(BaseModel):
    """An OAuth 2.0 token response (RFC 6749 section 5.1); other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1, max_length=16384)
    refresh_token: str | None = Field(None, min_length=1, max_length=16384)
    expires_in: int | None = Field(None, ge=1, le=10 * 365 * 86400, description="seconds")
    scope: str | None = Field(None, max_length=4000, description="space-separated scopes")
    token_type: str | None = Field(None, max_length=40)


def refresh_grant(client: OAuthClient, refresh_token: str, timeout_s: float) -> dict[str, Any]:
    """The token response for `refresh_token`; errors name the provider, never the tokens."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    status, body = _token_request(client, form, timeout_s)
    if status in _REFUSED and body.get("error") in ("invalid_grant", "invalid_token"):
        raise Conflict(f"{client.provider} no longer accepts the refresh token; connect again")
    return _granted(client, status, body)


def code_grant(
    client: OAuthClient, code: str, code_verifier: str, redirect_uri: str, timeout_s: float
) -> dict[str, Any]:
    """The token response for an authorization code (RFC 6749 4.1.3, with PKCE's verifier);
    a code the provider refuses is 400 (connect again), never a token in a message."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": code_verifier,
        "redirect_uri": redirect_uri,
    }
    status, body = _token_request(client, form, timeout_s)
    if status in _REFUSED and body.get("error") in ("invalid_grant", "invalid_request"):
        refused = error_code(body.get("error"))
        raise BadRequest(
            f"{client.provider} refused the authorization code ({refused}): connect again"
        )
    return _granted(client, status, body)


def _token_request(
    client: OAuthClient, form: dict[str, str], timeout_s: float
) -> tuple[int, dict[str, Any]]:
    """POSTs `form` with the client's credentials; the status and the JSON object answered."""
    form = {**form, "client_id": client.client_id}
    if client.client_secret:
        form["client_secret"] = client.client_secret
    name = f"{client.provider} token endpoint"
    try:
        response = httpx.post(
            client.token_url, data=form, timeout=timeout_s, headers={"Accept": "application/json"}
        )
    except httpx.ConnectError:
        raise ServiceUnavailable(f"the {name} cannot be reached") from None
    except httpx.TimeoutException:
        raise GatewayTimeout(f"the {name} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise BadGateway(f"the {name} failed: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):  # RFC 6749 answers a JSON object, errors included
        raise BadGateway(f"the {name} answered {response.status_code} without a JSON object")
    return response.status_code, body


def _granted(client: OAuthClient, status: int, body: dict[str, Any]) -> dict[str, Any]:
    name = f"{client.provider} token endpoint"
    if status != 200 or not isinstance(body.get("access_token"), str):
        raise BadGateway(
            f"the {name} answered {status} ({error_code(body.get('error'), 'no token')})"
        )
    return _checked(name, body)


def _checked(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The token response held to what a client may PUT (it is stored the same way), or 502."""
    try:
        return TokenResponse.model_validate(body).model_dump()
    except pydantic.ValidationError as exc:
        field = ".".join(map(str, exc.errors()[0]["loc"]))
        raise BadGateway(f"the {name} answered a token response whose {field} is wrong") from None
