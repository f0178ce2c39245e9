"""SQL for the durable job queue: enqueue, fair claims with SKIP LOCKED, leases, completion,
retries, cancellation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeAlias, TypeVar

from app.repositories import Conn, Row, locks
from app.strict_json import jsonb

P = TypeVar("P")
Q = TypeVar("Q")

CHANNEL = "postrag_jobs"
# Deleting a running job (its document was deleted) notifies this channel with the job's id
# (trigger jobs_notify_cancelled, migration V2_7).
CANCEL_CHANNEL = "postrag_job_cancelled"
# Claims take turns (each a few milliseconds), so that each one counts the running jobs of the
# claims before it: two workers woken together could otherwise both take one user's jobs.
CLAIM_LOCK_KEY = 0x706F737472616704
_COLUMNS = "id, kind, payload, state, attempts, max_attempts, document_id, owner_id, last_error"


@dataclass(frozen=True)
class Job(Generic[P]):
    """A job as the queue holds it; `payload` is the stored JSON object until its kind parses it
    (app/services/job_kinds)."""

    id: int
    kind: str
    payload: P
    state: str
    attempts: int
    max_attempts: int
    document_id: int | None
    owner_id: int | None
    last_error: str | None

    def with_payload(self, payload: Q) -> Job[Q]:
        return replace(self, payload=payload)  # type: ignore[arg-type,return-value]


StoredJob: TypeAlias = Job[Mapping[str, Any]]


def _job(row: Row | None) -> StoredJob | None:
    return None if row is None else Job(**row)


def listen(conn: Conn) -> None:
    """Hear of queued jobs (and of wake-ups) on this connection: `conn.notifies()`."""
    conn.execute(f"LISTEN {CHANNEL}")


def listen_for_cancellations(conn: Conn) -> None:
    """Hear of deleted running jobs on this connection; each notification's payload is an id."""
    conn.execute(f"LISTEN {CANCEL_CHANNEL}")


def wake_workers(conn: Conn) -> None:
    """Wake every idle worker (to stop them promptly)."""
    conn.execute("SELECT pg_notify(%(channel)s, 'wake')", {"channel": CHANNEL})


def enqueue(
    conn: Conn,
    *,
    kind: str,
    payload: dict[str, Any],
    dedupe_key: str | None,
    max_attempts: int,
    document_id: int | None = None,
    owner_id: int | None = None,
    delay_s: float = 0.0,
) -> StoredJob | None:
    """Queue a job (due in `delay_s`) and wake idle workers when the transaction commits.

    A document's job goes with the document, and belongs to the document's owner (fair claims);
    another job belongs to `owner_id` when it works for a user (counted in their running jobs).
    None when an active (queued or running) job already has this dedupe key.
    """
    row = conn.execute(
        "INSERT INTO jobs (kind, payload, dedupe_key, max_attempts, document_id, owner_id,"
        " run_after) VALUES (%(kind)s, %(payload)s, %(dedupe_key)s, %(max_attempts)s,"
        " %(document_id)s, COALESCE(%(owner_id)s,"
        " (SELECT owner_id FROM documents WHERE id = %(document_id)s)),"
        " now() + make_interval(secs => %(delay)s))"
        " ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running')"
        f" DO NOTHING RETURNING {_COLUMNS}",
        {
            "kind": kind,
            "payload": jsonb(payload),
            "dedupe_key": dedupe_key,
            "max_attempts": max_attempts,
            "document_id": document_id,
            "owner_id": owner_id,
            "delay": delay_s,
        },
    ).fetchone()
    if row is not None:
        conn.execute("SELECT pg_notify(%(channel)s, %(kind)s)", {"channel": CHANNEL, "kind": kind})
    return _job(row)


def has_queued(conn: Conn, kind: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM jobs WHERE kind = %(kind)s AND state = 'queued' LIMIT 1", {"kind": kind}
    ).fetchone()
    return row is not None


def requeue_expired(conn: Conn) -> list[StoredJob]:
    """Running jobs whose lease ran out belong to dead workers: queue them again (or fail them).

    Returns the jobs changed, with their new state and error.
    """
    rows = conn.execute(
        "UPDATE jobs SET"
        " state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,"
        " finished_at = CASE WHEN attempts >= max_attempts THEN now() END,"
        " last_error = coalesce(last_error || '; ', '')"
        "              || 'lease of ' || lease_owner || ' expired',"
        " lease_owner = NULL, lease_expires_at = NULL, run_after = now()"
        " WHERE state = 'running' AND lease_expires_at < now()"
        f" RETURNING {_COLUMNS}"
    ).fetchall()
    return [Job(**row) for row in rows]


_RUNNING = (
    "WITH running AS (SELECT owner_id, count(*) AS jobs FROM jobs WHERE state = 'running'"
    "                 GROUP BY owner_id)"
)
# A queued job its owner may run now: under the per-user cap (jobs of nobody, and jobs of the
# kinds in `uncapped`, are never capped).
_CLAIMABLE = (
    "q.state = 'queued' AND (q.owner_id IS NULL OR q.kind = ANY(%(uncapped)s)"
    " OR coalesce(r.jobs, 0) < %(per_user)s)"
)


def claim(
    conn: Conn,
    *,
    worker_id: str,
    lease_s: int,
    space_id: int,
    per_user: int = 2**31 - 1,
    uncapped: Sequence[str] = (),
) -> StoredJob | None:
    """Take a due queued job; SKIP LOCKED lets any number of workers claim at once.

    Fair between users: no user runs more than `per_user` jobs at once, whoever else is
    waiting (a job cannot be interrupted, so a user who held every worker would keep the next
    user's uploads waiting until one of theirs ended), and the job of the owner with the
    fewest running jobs comes first, then the longest due. Jobs of the `uncapped` kinds (short
    slices of a job that already had its turn) pass the cap but still count and still come
    after the jobs of owners running fewer. A job whose payload names a `space_id` (a space's
    fill, a range of a document's chunks) is only for a worker of that embedding space (it
    holds that space's model). In the caller's transaction, which holds the claim lock until
    it ends.
    """
    locks.advisory_xact_lock(conn, CLAIM_LOCK_KEY)  # the UPDATE's snapshot is taken after it
    row = conn.execute(
        f"{_RUNNING}"
        " UPDATE jobs SET state = 'running', attempts = attempts + 1,"
        " lease_owner = %(worker)s, lease_expires_at = now() + make_interval(secs => %(lease)s)"
        " WHERE id = (SELECT q.id FROM jobs q LEFT JOIN running r ON r.owner_id = q.owner_id"
        f"             WHERE {_CLAIMABLE} AND q.run_after <= now()"
        "             AND coalesce((q.payload->>'space_id')::bigint = %(space)s, true)"
        "             ORDER BY coalesce(r.jobs, 0), q.run_after, q.id"
        "             LIMIT 1 FOR UPDATE OF q SKIP LOCKED)"
        f" RETURNING {_COLUMNS}",
        {
            "worker": worker_id,
            "lease": lease_s,
            "space": space_id,
            "per_user": per_user,
            "uncapped": list(uncapped),
        },
    ).fetchone()
    return _job(row)


def renew_lease(conn: Conn, *, job_id: int, worker_id: str, lease_s: int) -> bool:
    """Extend our lease; False when the job is no longer ours (it expired and moved on, or it
    was deleted with its document)."""
    row = conn.execute(
        "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => %(lease)s)"
        " WHERE id = %(id)s AND state = 'running' AND lease_owner = %(worker)s RETURNING id",
        {"id": job_id, "worker": worker_id, "lease": lease_s},
    ).fetchone()
    return row is not None


def lock_if_owned(conn: Conn, *, job_id: int, worker_id: str) -> bool:
    """In the caller's transaction: lock the job row if we still hold its lease."""
    row = conn.execute(
        "SELECT id FROM jobs WHERE id = %(id)s AND state = 'running' AND lease_owner = %(worker)s"
        " FOR UPDATE",
        {"id": job_id, "worker": worker_id},
    ).fetchone()
    return row is not None


def release(conn: Conn, *, job_id: int, worker_id: str) -> bool:
    """Give a running job back unfinished: queued, unleased, due now, the attempt not counted,
    and idle workers woken. False when `worker_id` no longer holds its lease."""
    row = conn.execute(
        "UPDATE jobs SET state = 'queued', attempts = greatest(attempts - 1, 0),"
        " lease_owner = NULL, lease_expires_at = NULL, run_after = now()"
        " WHERE id = %(id)s AND state = 'running' AND lease_owner = %(worker)s"
        " RETURNING kind",
        {"id": job_id, "worker": worker_id},
    ).fetchone()
    if row is None:
        return False
    conn.execute(
        "SELECT pg_notify(%(channel)s, %(kind)s)", {"channel": CHANNEL, "kind": row["kind"]}
    )
    return True


def succeed(conn: Conn, *, job_id: int, worker_id: str) -> bool:
    """Mark the job done; False when `worker_id` no longer holds it (or it is done already)."""
    row = conn.execute(
        "UPDATE jobs SET state = 'succeeded', finished_at = now(), lease_owner = NULL,"
        " lease_expires_at = NULL"
        " WHERE id = %(id)s AND state = 'running' AND lease_owner = %(worker)s RETURNING id",
        {"id": job_id, "worker": worker_id},
    ).fetchone()
    return row is not None


def fail_or_retry(
    conn: Conn,
    *,
    job_id: int,
    worker_id: str,
    error: str,
    retry_in_s: float,
    permanent: bool = False,
) -> StoredJob | None:
    """Queue the job again after `retry_in_s`, or fail it for good after its last attempt.

    A permanent failure (a file that cannot be read does not get better) is this attempt being
    the last: its attempts are all used up.
    """
    last = "(%(permanent)s OR attempts >= max_attempts)"
    row = conn.execute(
        "UPDATE jobs SET"
        " max_attempts = CASE WHEN %(permanent)s THEN attempts ELSE max_attempts END,"
        f" state = CASE WHEN {last} THEN 'failed' ELSE 'queued' END,"
        f" finished_at = CASE WHEN {last} THEN now() END,"
        " run_after = now() + make_interval(secs => %(delay)s),"
        " last_error = %(error)s, lease_owner = NULL, lease_expires_at = NULL"
        " WHERE id = %(id)s AND state = 'running' AND lease_owner = %(worker)s"
        f" RETURNING {_COLUMNS}",
        {
            "id": job_id,
            "worker": worker_id,
            "error": error[:2000],
            "delay": retry_in_s,
            "permanent": permanent,
        },
    ).fetchone()
    return _job(row)


def seconds_until_next(
    conn: Conn,
    *,
    per_user: int = 2**31 - 1,
    uncapped: Sequence[str] = (),
    space_id: int | None = None,
) -> float | None:
    """Seconds until the next job this worker may claim is due or a lease expires (None:
    nothing pending). A job held back by its owner's cap waits for one of the owner's running
    jobs to end, and the worker that ends it claims the next itself; a job for another
    embedding space's workers (as `claim` sees it) is not this worker's to wait for."""
    row = conn.execute(
        f"{_RUNNING}"
        " SELECT greatest(0, extract(epoch FROM least("
        " (SELECT min(q.run_after) FROM jobs q LEFT JOIN running r ON r.owner_id = q.owner_id"
        f"  WHERE {_CLAIMABLE}"
        "   AND coalesce((q.payload->>'space_id')::bigint = %(space)s, true)),"
        " (SELECT min(lease_expires_at) FROM jobs WHERE state = 'running')) - now())) AS s",
        {"per_user": per_user, "uncapped": list(uncapped), "space": space_id},
    ).fetchone()
    return None if row is None or row["s"] is None else float(row["s"])


def cancel_for_document(conn: Conn, *, document_id: int, kind: str) -> None:
    """Delete the document's queued and running jobs of `kind` (running ones hear of it at
    once); a job row locked at this moment (its worker is writing or ending it) is skipped, so
    this never waits: its worker finds its work gone."""
    conn.execute(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE document_id = %(document)s"
        " AND kind = %(kind)s AND state IN ('queued', 'running') FOR UPDATE SKIP LOCKED)",
        {"document": document_id, "kind": kind},
    )


def count_active(conn: Conn) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM jobs WHERE state IN ('queued', 'running')"
    ).fetchone()
    return 0 if row is None else int(row["n"])
