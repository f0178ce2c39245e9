"""/api/v1/connectors/atlassian/*: connect Atlassian by consent (OAuth 2.0 three-legged), and
list the sites the stored token reaches.

The callback is a browser navigation back from Atlassian. It answers JSON (the connector, as
GET /api/v1/connectors shows it, and the Atlassian account now linked to the user), or, to a
browser (which prefers HTML), a 303 back to the web page with ?connected=atlassian or
?connect_error=<why>. It needs no credential: the state names the user. When the web session's
cookie or a bearer token comes with it, that user must be the state's.
"""

from __future__ import annotations

from flask import Blueprint, Response, json, redirect, request, url_for
from pydantic import BaseModel, Field
from werkzeug.wrappers import Response as Redirect

from app.api import cookies
from app.api.auth import own_url
from app.api.connectors import Connector
from app.api.endpoint import db, endpoint, optional_principal, principal
from app.errors import AppError
from app.runtime import runtime
from app.services import atlassian

bp = Blueprint("atlassian", __name__, url_prefix="/api/v1/connectors/atlassian")


class AuthorizeUrl(BaseModel):
    authorize_url: str = Field(description="send the user's browser here to consent")


class CallbackQuery(BaseModel):
    code: str | None = Field(None, max_length=4000)
    state: str | None = Field(None, max_length=2000)
    error: str | None = Field(None, max_length=200, description="the consent was not given")
    error_description: str | None = Field(None, max_length=2000)


class Connected(Connector):
    account_id: str | None = Field(
        description="your Atlassian account, now linked to you so that sources' permissions"
        " naming it reach you (null: Atlassian did not say; ask for the read:me scope)"
    )


class Site(BaseModel):
    id: str = Field(description="the cloud id: https://api.atlassian.com/ex/confluence/<id>")
    name: str
    url: str
    scopes: list[str]


class SiteList(BaseModel):
    items: list[Site]


@bp.get("/authorize")
@endpoint(
    summary="Start connecting Atlassian: the URL where you consent (valid 10 minutes, once)",
    tag="connectors",
    response=AuthorizeUrl,
    errors=(400, 403, 503),
)
def authorize() -> Response:
    rt = runtime()
    redirect_uri = rt.settings.atlassian_redirect_uri or own_url("atlassian.callback")
    url, browser = atlassian.begin(db(), principal(), rt.settings, rt.keyring, redirect_uri)
    body = AuthorizeUrl(authorize_url=url).model_dump(mode="json")
    response = Response(json.dumps(body), mimetype="application/json")
    lifetime = int(atlassian.CONSENT_LIFETIME.total_seconds())
    cookies.put(response, cookies.CONSENT, browser, max_age=lifetime)
    return response


@bp.get("/callback")
@endpoint(
    summary="Atlassian's redirect back: the code is exchanged and the tokens stored encrypted",
    tag="connectors",
    auth="optional",
    query=CallbackQuery,
    response=Connected,
    errors=(400, 403, 502, 503, 504),
)
def callback(query: CallbackQuery) -> Connected | Redirect:
    rt = runtime()
    back = atlassian.ConsentReturn(
        state=query.state,
        code=query.code,
        error=query.error,
        browser_secret=cookies.read(cookies.CONSENT),
    )
    # A browser navigation (it prefers HTML) goes back to the web page, which says how it went.
    browser = request.accept_mimetypes.best_match(("application/json", "text/html")) == "text/html"
    try:
        stored = atlassian.complete(db(), optional_principal(), rt.settings, rt.keyring, back)
    except AppError as exc:
        if not browser:
            raise
        return redirect(url_for("web.index", connect_error=exc.detail[:300]), code=303)
    if browser:
        return redirect(url_for("web.index", connected="atlassian"), code=303)
    return Connected(**stored)


@bp.get("/resources")
@endpoint(
    summary="The Atlassian sites (cloud ids) your connection reaches",
    tag="connectors",
    response=SiteList,
    errors=(404, 409, 502, 503, 504),
)
def resources() -> SiteList:
    rt = runtime()
    found = atlassian.sites(db(), principal(), rt.settings, rt.keyring)
    return SiteList(items=[Site(**site) for site in found])
