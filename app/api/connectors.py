"""/api/v1/connectors: your third-party (OAuth) connections; tokens go in and never come out."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint
from pydantic import BaseModel

from app.api.endpoint import db, endpoint, principal
from app.providers.oauth import TokenResponse
from app.runtime import runtime
from app.services import connectors
from app.services.secrets import Keyring

bp = Blueprint("connectors", __name__, url_prefix="/api/v1")


class Connector(BaseModel):
    provider: str
    connected: bool
    scopes: list[str]
    expires_at: datetime | None
    expired: bool
    updated_at: datetime


class ConnectorList(BaseModel):
    items: list[Connector]


def _keyring() -> Keyring | None:
    keyring: Keyring | None = runtime().keyring
    return keyring


@bp.get("/connectors")
@endpoint(
    summary="Your connected providers (never their tokens)",
    tag="connectors",
    response=ConnectorList,
)
def list_connectors() -> ConnectorList:
    return ConnectorList(items=[Connector(**c) for c in connectors.list_own(db(), principal())])


@bp.put("/connectors/<provider>")
@endpoint(
    summary="Connect a provider with an OAuth token response (stored encrypted)",
    tag="connectors",
    body=TokenResponse,
    response=Connector,
    errors=(422, 503),
)
def put_connector(provider: str, body: TokenResponse) -> Connector:
    stored = connectors.store(db(), principal(), provider, body.model_dump(), _keyring())
    return Connector(**stored)


@bp.delete("/connectors/<provider>")
@endpoint(
    summary="Disconnect a provider (its tokens are deleted)",
    tag="connectors",
    status=204,
    errors=(404, 422),
)
def delete_connector(provider: str) -> None:
    connectors.delete(db(), principal(), provider)


@bp.post("/connectors/<provider>/refresh")
@endpoint(
    summary="Refresh a provider's tokens now (refresh_token grant)",
    tag="connectors",
    response=Connector,
    errors=(404, 409, 422, 502, 503, 504),
)
def refresh_connector(provider: str) -> Connector:
    rt = runtime()
    login = rt.oidc_login if provider == connectors.IDENTITY else None  # the sign-in's tokens
    refresher = login.refresh if login is not None else None
    refreshed = connectors.refresh(db(), principal(), provider, rt.keyring, rt.settings, refresher)
    return Connector(**refreshed)
