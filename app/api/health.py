"""GET /healthz (liveness: no database, no token) and GET /readyz (readiness: the database
answers, migrations at head, pgvector; no token needed, a token gets the details)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, json
from pydantic import BaseModel, Field

from app.api.endpoint import db, endpoint
from app.db import scope
from app.runtime import runtime
from app.services import health

bp = Blueprint("health", __name__)


class Liveness(BaseModel):
    status: str


class ReplicaReadiness(BaseModel):
    state: str = Field(description="fresh (reads go there), lagging, down, not a standby, unknown")
    lag_s: float | None = Field(None, description="at least this far behind, at the last check")
    lag_bytes: int | None = None


class Readiness(BaseModel):
    status: str = Field(description="ready or not ready; the only field without a token")
    database: str | None = None
    migrations: str | None = None
    pgvector: str | None = None
    replica: ReplicaReadiness | None = Field(
        None, description="with DATABASE_REPLICA_URL; never makes the app unready"
    )


@bp.get("/healthz")
@endpoint(summary="Liveness: the process answers", tag="health", auth="public", response=Liveness)
def healthz() -> Liveness:
    return Liveness(status="ok")


@bp.get("/readyz")
@endpoint(
    summary="Readiness, for load balancers (no token needed): 200 when the database answers,"
    " migrations are at head and pgvector is installed, else 503. With a token, the details",
    tag="health",
    auth="optional",
    response=Readiness,
    errors=(503,),
)
def readyz() -> Response:
    settings = runtime().settings
    # The server's state is nobody's data; checked as the tables' owner, which can read the
    # migrations table (postrag_app may not).
    conn = db()
    with scope.acting_as_owner(conn):
        ready, details = health.readiness(conn, settings.migrations_dir)
    body: dict[str, Any] = {"status": "ready" if ready else "not ready"}
    if "principal" in g:  # the details are for users, not for whoever reaches the port
        body.update(details)
        replica = runtime().replica
        if replica is not None:  # reads fall back to the primary: only reported
            state = replica.status()
            body["replica"] = {
                "state": state.state,
                "lag_s": state.lag_s,
                "lag_bytes": state.lag_bytes,
            }
    return Response(json.dumps(body), status=200 if ready else 503, mimetype="application/json")
