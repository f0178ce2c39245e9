"""Job kinds: a kind registered from outside the worker is queued, claimed, run, retried and
failed by the real worker on the real queue, its hooks getting the parsed payload."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from app.repositories import jobs as job_repo
from app.runtime import Runtime
from app.services import job_kinds
from app.services.job_kinds import InvalidPayload, JobKind, JobRegistry, builtin
from app.services.worker import Worker, connect
from tests.helpers import drain


@dataclass(frozen=True)
class Greeting:
    name: str
    times: int


@dataclass
class Greeter:
    """A job kind for the tests: records what the worker asks of it, and the job's state in the
    transaction each hook runs in."""

    during_run: Callable = lambda ctx: None
    calls: list[tuple] = field(default_factory=list)

    def run(self, job, ctx) -> None:
        self.calls.append(("run", job.payload, job.attempts))
        self.during_run(ctx)

    def on_requeue(self, conn, job, error) -> None:
        self.calls.append(("requeue", job.payload, error, _state(conn, job.id)))

    def on_final_failure(self, conn, job, error) -> None:
        self.calls.append(("final", job.payload, error, _state(conn, job.id)))

    def kind(self) -> JobKind[Greeting]:
        return JobKind(
            name="test_greet",
            payload=Greeting,
            run=self.run,
            on_requeue=self.on_requeue,
            on_final_failure=self.on_final_failure,
        )


def _state(conn, job_id: int) -> str:
    return conn.execute("SELECT state FROM jobs WHERE id = %s", (job_id,)).fetchone()["state"]


def _worker(app, greeter: Greeter, **settings) -> Worker:
    """The real worker, with the built-in kinds and the greeter's registered beside them."""
    kinds = builtin.registry()
    kinds.register(greeter.kind())
    configured = replace(Runtime.of(app).settings, **settings)
    return Worker(configured.database_url, configured, Runtime.of(app).embedder, kinds=kinds)


def _job(database_url: str, job_id: int) -> dict:
    with connect(database_url) as conn:
        return conn.execute(
            "SELECT state, attempts, max_attempts, last_error, lease_owner FROM jobs WHERE id = %s",
            (job_id,),
        ).fetchone()


def _enqueue(database_url: str, greeter: Greeter, max_attempts: int) -> int:
    with connect(database_url) as conn:
        job = job_kinds.enqueue(conn, greeter.kind(), Greeting("ada", 2), max_attempts=max_attempts)
    assert job is not None
    return job.id


def test_a_registered_kind_runs_with_its_parsed_payload(app, database_url):
    greeter = Greeter()
    job_id = _enqueue(database_url, greeter, max_attempts=3)
    assert drain(app, worker=_worker(app, greeter)) == 1
    assert greeter.calls == [("run", Greeting("ada", 2), 1)]
    assert _job(database_url, job_id) == {  # a run that returns is the job done
        "state": "succeeded",
        "attempts": 1,
        "max_attempts": 3,
        "last_error": None,
        "lease_owner": None,
    }


def test_a_failing_kind_is_requeued_then_fails_for_good_through_its_hooks(app, database_url):
    def fail(ctx) -> None:
        raise RuntimeError("boom")

    greeter = Greeter(during_run=fail)
    job_id = _enqueue(database_url, greeter, max_attempts=2)
    assert drain(app, worker=_worker(app, greeter, job_retry_base_s=0)) == 2
    payload = Greeting("ada", 2)
    assert greeter.calls == [
        ("run", payload, 1),
        ("requeue", payload, "attempt 1 failed: boom", "queued"),
        ("run", payload, 2),
        ("final", payload, "boom", "failed"),
    ]
    assert _job(database_url, job_id)["state"] == "failed"


def test_a_stopping_worker_gives_the_job_back_through_its_kind(app, database_url):
    def stop_midway(ctx) -> None:
        worker.stop_event.set()  # as SIGTERM does
        ctx.renew()  # a checkpoint: the worker is stopping

    greeter = Greeter(during_run=stop_midway)
    worker = _worker(app, greeter)
    job_id = _enqueue(database_url, greeter, max_attempts=3)
    assert drain(app, worker=worker) == 1
    payload = Greeting("ada", 2)
    assert greeter.calls == [("run", payload, 1), ("requeue", payload, None, "queued")]
    assert _job(database_url, job_id)["attempts"] == 0  # the attempt is not counted


def test_a_dead_workers_last_attempt_fails_through_its_kind(app, database_url):
    greeter = Greeter()
    job_id = _enqueue(database_url, greeter, max_attempts=1)
    with connect(database_url) as conn:
        assert job_repo.claim(conn, worker_id="dead", lease_s=1, space_id=0) is not None
    time.sleep(1.2)
    assert drain(app, worker=_worker(app, greeter)) == 0
    assert greeter.calls == [("final", Greeting("ada", 2), "lease of dead expired", "failed")]
    assert _job(database_url, job_id)["state"] == "failed"


def test_a_job_of_an_unknown_kind_fails_with_the_reason_and_the_worker_goes_on(app, database_url):
    greeter = Greeter()
    with connect(database_url) as conn:
        unknown = job_repo.enqueue(
            conn, kind="no_such_kind", payload={"x": 1}, dedupe_key=None, max_attempts=2
        )
    assert unknown is not None
    known = _enqueue(database_url, greeter, max_attempts=1)
    # Retried like any failure: during an upgrade, a newer worker may know the kind.
    assert drain(app, worker=_worker(app, greeter, job_retry_base_s=0)) == 3
    failed = _job(database_url, unknown.id)
    assert (failed["state"], failed["attempts"]) == ("failed", 2)
    assert failed["last_error"] == (
        "unknown job kind 'no_such_kind' (this worker runs: embed_range, embed_space, evaluate,"
        " ingest_document, schedule_sources, sync_source, test_greet)"
    )
    assert _job(database_url, known)["state"] == "succeeded"
    assert greeter.calls == [("run", Greeting("ada", 2), 1)]


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"name": "ada", "times": "2"}, "needs times as int, not '2'"),
        ({"name": "ada", "times": True}, "needs times as int, not True"),
        ({"times": 2}, "has no name"),
    ],
)
def test_a_payload_that_does_not_parse_fails_at_once_without_hooks(app, database_url, payload, why):
    greeter = Greeter()
    with connect(database_url) as conn:
        job = job_repo.enqueue(
            conn, kind="test_greet", payload=payload, dedupe_key=None, max_attempts=3
        )
    assert job is not None
    assert drain(app, worker=_worker(app, greeter, job_retry_base_s=0)) == 1
    failed = _job(database_url, job.id)
    assert (failed["state"], failed["attempts"]) == ("failed", 1)
    assert failed["last_error"] == f"the payload of a test_greet job {why}"
    assert greeter.calls == []


def test_a_kind_is_registered_once_and_its_payload_must_be_plain_json():
    kinds = JobRegistry([Greeter().kind()])
    with pytest.raises(ValueError, match="test_greet is registered already"):
        kinds.register(Greeter().kind())

    @dataclass(frozen=True)
    class Tagged:
        tags: list[str]

    with pytest.raises(TypeError, match="payload field tags"):
        JobKind(name="test_tagged", payload=Tagged, run=Greeter().run)
    with pytest.raises(InvalidPayload, match="needs times as int"):
        Greeter().kind().parse({"name": "ada", "times": 2.5})
