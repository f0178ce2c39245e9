"""The registry of job kinds: what each kind of background job is and does, for the worker.

A kind (procrastinate's task) is one small module that declares a `JobKind`: its name, the
frozen dataclass its payload is parsed into (once, when a worker takes the job), `run` and two
hooks, `on_requeue` (the job goes back to the queue: a failed attempt will be retried, its worker
died, or its worker is stopping) and `on_final_failure` (its last attempt failed). The worker
(app/services/worker.py) claims, leases, retries and releases jobs and knows no kind: it looks
each job's kind up in the `JobRegistry` it was given (`builtin.registry()` by default). A job
whose payload has a `space_id` is only claimed by a worker of that embedding space, and a kind
marked `uncapped` passes its owner's cap on running jobs (app/repositories/jobs.py `claim`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from app.providers.embeddings import Embedder
from app.repositories import Conn
from app.repositories import jobs as job_repo
from app.repositories.embedding_spaces import EmbeddingSpace
from app.repositories.jobs import Job, StoredJob
from app.settings import Settings

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

P = TypeVar("P", bound="DataclassInstance")

# What a payload's fields may be: what JSON stores as it is.
_FIELD_TYPES = (int, float, str, bool)


class LeaseLost(RuntimeError):
    """Our lease on the job expired and it may be running elsewhere: stop without writing."""


class UnknownKind(LookupError):
    """A job of a kind this worker does not run (a newer worker may: the job is retried)."""


class InvalidPayload(ValueError):
    """A job's payload does not parse into its kind's dataclass (retrying will not help)."""


@dataclass(frozen=True)
class JobContext:
    """What a job's `run` gets from the worker running it."""

    conn: Conn
    job_id: int
    worker_id: str
    settings: Settings
    embedder: Embedder
    space: EmbeddingSpace  # the embedder's embedding space
    renew: Callable[[], None]  # raises LeaseLost when the job is no longer ours (heartbeat)
    # After each embedded batch of a document, once `renew` passed: a checkpoint as `renew` is,
    # after the worker's test hook (Worker.after_batch).
    after_batch: Callable[[], None]

    def commit_if_owned(self) -> None:
        """In an open transaction: lock the job row, or raise LeaseLost."""
        if not job_repo.lock_if_owned(self.conn, job_id=self.job_id, worker_id=self.worker_id):
            raise LeaseLost(f"job {self.job_id} is no longer leased to {self.worker_id}")

    def succeed(self) -> None:
        """In the transaction of the job's last write (after `commit_if_owned`): the job is done.

        A job whose `run` returns is marked done by the worker anyway; this makes it so in the
        same commit as the result, so that a crash in between cannot run the job again.
        """
        job_repo.succeed(self.conn, job_id=self.job_id, worker_id=self.worker_id)


def _no_requeue_hook(conn: Conn, job: Job[Any], error: str | None) -> None:
    pass


def _no_failure_hook(conn: Conn, job: Job[Any], error: str) -> None:
    pass


@dataclass(frozen=True)
class JobKind(Generic[P]):
    """One kind of job. The hooks run in the worker's transaction that changed the job's state,
    as the tables' owner; `error` is why (None when a stopping worker gave the job back)."""

    name: str
    payload: type[P]  # a frozen dataclass whose fields are int, float, str or bool
    run: Callable[[Job[P], JobContext], None]
    on_requeue: Callable[[Conn, Job[P], str | None], None] = _no_requeue_hook
    on_final_failure: Callable[[Conn, Job[P], str], None] = _no_failure_hook
    # Short slices of an owner's job that had its turn already (a range of a big document's
    # chunks): they pass the owner's cap on running jobs, so that they can run on every worker.
    uncapped: bool = False

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.payload):
            raise TypeError(f"job kind {self.name}: its payload must be a dataclass")
        for name, hint in typing.get_type_hints(self.payload).items():
            if hint not in _FIELD_TYPES:
                raise TypeError(f"job kind {self.name}: payload field {name} is {hint}")

    def parse(self, payload: Mapping[str, Any]) -> P:
        """The payload's dataclass; InvalidPayload names the first field that is not right.
        Keys the dataclass does not have are ignored (a newer version may have added them)."""
        values = {}
        for name, hint in typing.get_type_hints(self.payload).items():
            if name not in payload:
                raise InvalidPayload(f"the payload of a {self.name} job has no {name}")
            value = payload[name]
            # Exact types: True is not an int here; a float field takes a whole number.
            if not (type(value) is hint or (hint is float and type(value) is int)):
                raise InvalidPayload(
                    f"the payload of a {self.name} job needs {name} as {hint.__name__},"
                    f" not {value!r}"
                )
            values[name] = value
        return self.payload(**values)


class JobRegistry:
    """The kinds a worker runs, by name."""

    def __init__(self, kinds: Iterable[JobKind[Any]] = ()) -> None:
        self._kinds: dict[str, JobKind[Any]] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: JobKind[P]) -> JobKind[P]:
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name} is registered already")
        self._kinds[kind.name] = kind
        return kind

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def uncapped(self) -> list[str]:
        """The names of the kinds that pass their owner's cap on running jobs."""
        return sorted(name for name, kind in self._kinds.items() if kind.uncapped)

    def parse(self, job: StoredJob) -> tuple[JobKind[Any], Job[Any]]:
        """The job's kind, and the job with its payload parsed (UnknownKind, InvalidPayload)."""
        kind = self._kinds.get(job.kind)
        if kind is None:
            known = ", ".join(self.names()) or "none"
            raise UnknownKind(f"unknown job kind {job.kind!r} (this worker runs: {known})")
        return kind, job.with_payload(kind.parse(job.payload))


def enqueue(
    conn: Conn,
    kind: JobKind[P],
    payload: P,
    *,
    max_attempts: int,
    dedupe_key: str | None = None,
    document_id: int | None = None,
    owner_id: int | None = None,
    delay_s: float = 0.0,
) -> StoredJob | None:
    """Queue a job of `kind` (see job_repo.enqueue); None when its dedupe key is active."""
    return job_repo.enqueue(
        conn,
        kind=kind.name,
        payload=dataclasses.asdict(payload),
        dedupe_key=dedupe_key,
        max_attempts=max_attempts,
        document_id=document_id,
        owner_id=owner_id,
        delay_s=delay_s,
    )
