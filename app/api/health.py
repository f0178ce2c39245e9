"""GET /healthz (liveness, no auth) and GET /readyz (database, migrations, pgvector)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, json
from pydantic import BaseModel

from app.api.endpoint import db, endpoint
from app.db import scope
from app.services import health

bp = Blueprint("health", __name__)


class Liveness(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    migrations: str | None = None
    pgvector: str | None = None


@bp.get("/healthz")
@endpoint(summary="Liveness: the process answers", tag="health", auth="public", response=Liveness)
def healthz() -> Liveness:
    return Liveness(status="ok")


@bp.get("/readyz")
@endpoint(
    summary="Readiness: database reachable, migrations at head, pgvector installed",
    tag="health",
    response=Readiness,
    errors=(503,),
)
def readyz() -> Response:
    settings = current_app.extensions["postrag.settings"]
    conn = db()
    # The server's state is nobody's data; checked as the tables' owner, which can read the
    # migrations table (postrag_app may not).
    scope.act_as_owner(conn)
    ready, details = health.readiness(conn, settings.migrations_dir)
    body = {"status": "ready" if ready else "not ready", **details}
    return Response(json.dumps(body), status=200 if ready else 503, mimetype="application/json")
