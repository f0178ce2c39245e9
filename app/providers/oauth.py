"""OAuth 2.0 token endpoint client: the refresh_token grant (RFC 6749 section 6)."""

from __future__ import annotations

from typing import Any

import httpx
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from app.errors import BadGateway, Conflict, GatewayTimeout, ServiceUnavailable
from app.settings import OAuthClient


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
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client.client_id,
    }
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
    if response.status_code in (400, 401) and body.get("error") in (
        "invalid_grant",
        "invalid_token",
    ):
        raise Conflict(f"{client.provider} no longer accepts the refresh token; connect again")
    if response.status_code != 200 or not isinstance(body.get("access_token"), str):
        error = body.get("error")
        error = error if isinstance(error, str) else None
        raise BadGateway(f"the {name} answered {response.status_code} ({error or 'no token'})")
    return _checked(name, body)


def _checked(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The token response held to what a client may PUT (it is stored the same way), or 502."""
    try:
        return TokenResponse.model_validate(body).model_dump()
    except pydantic.ValidationError as exc:
        field = ".".join(map(str, exc.errors()[0]["loc"]))
        raise BadGateway(f"the {name} answered a token response whose {field} is wrong") from None
