"""Atlassian Cloud's OAuth 2.0 three-legged flow: the consent URL (with PKCE), and the sites a
token reaches (accessible resources: cloud id, name, URL, scopes)."""

from __future__ import annotations

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from app.providers.oidc_login import pkce_pair, with_query
from app.providers.source_http import SourceHttp
from app.providers.source_items import SourceFailed

AUDIENCE = "api.atlassian.com"
MAX_SITES = 1000


class Site(BaseModel):
    """One accessible resource; other fields (avatarUrl) are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200, description="the cloud id")
    name: str = Field(max_length=1000)
    url: str = Field(max_length=2000)
    scopes: list[str] = Field(default_factory=list, max_length=200)


_SITES = pydantic.TypeAdapter(list[Site])


class Me(BaseModel):
    """Whose account a token is (Atlassian's user identity API, scope `read:me`)."""

    model_config = ConfigDict(extra="ignore")

    account_id: str = Field(min_length=1, max_length=128)
    email: str | None = Field(None, max_length=320)


def consent_url(
    authorize_url: str, client_id: str, scopes: tuple[str, ...], redirect_uri: str, state: str
) -> tuple[str, str]:
    """Where to send the user to consent, and the PKCE code verifier its code needs."""
    verifier, challenge = pkce_pair()
    params = {
        "audience": AUDIENCE,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "redirect_uri": redirect_uri,
        "state": state,
        "response_type": "code",
        "prompt": "consent",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return with_query(authorize_url, params), verifier


def _invalid(http: SourceHttp, what: str, exc: pydantic.ValidationError) -> SourceFailed:
    where = ".".join(map(str, exc.errors()[0]["loc"]))
    return SourceFailed(f"{http.name} answered {what} whose {where} is wrong")


def me(http: SourceHttp, url: str) -> Me:
    """The account of the token of `http`; SourceFailed for an answer of another shape."""
    try:
        return Me.model_validate(http.get_json(url))
    except pydantic.ValidationError as exc:
        raise _invalid(http, "its user", exc) from None


def accessible_resources(http: SourceHttp, url: str) -> list[Site]:
    """The sites the token of `http` reaches; SourceFailed for an answer of another shape."""
    body = http.get_json(url)
    if isinstance(body, list) and len(body) > MAX_SITES:
        raise SourceFailed(f"{http.name} lists more than {MAX_SITES} sites")
    try:
        return _SITES.validate_python(body)
    except pydantic.ValidationError as exc:
        raise _invalid(http, "accessible resources", exc) from None
