"""Request ids (header, problem+json, logs), GET /metrics, and JSON logs from `postrag serve`."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time

from prometheus_client.parser import text_string_to_metric_families

from app import logs
from tests.helpers import (
    admin_token_in,
    ask,
    bearer,
    drain,
    http_get,
    new_chat,
    start_serve,
    upload,
)

SEARCH = "/api/v1/search"


def samples(client, headers) -> dict[tuple[str, tuple], float]:
    """Every sample of GET /metrics as {(name, sorted labels): value}."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4")
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found, name, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_every_response_carries_a_request_id_and_problems_quote_it(client, admin):
    fresh = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["X-Request-ID"])
    assert client.get("/healthz").headers["X-Request-ID"] != fresh.headers["X-Request-ID"]
    given = client.get("/api/v1/me", headers={**admin, "X-Request-ID": "lb-7f3a.1"})
    assert given.headers["X-Request-ID"] == "lb-7f3a.1"
    # An id that could forge log lines or bloat them is replaced, not echoed.
    for bad in ("a b", "x" * 129, "id;rm -rf", "\u00e9t\u00e9", ""):
        echoed = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert echoed != bad and re.fullmatch(r"[0-9a-f]{32}", echoed)
    missing = client.get("/api/v1/collections/999999", headers={**admin, "X-Request-ID": "req-42"})
    assert missing.status_code == 404
    assert missing.content_type == "application/problem+json"
    assert missing.json["request_id"] == "req-42" == missing.headers["X-Request-ID"]
    unauthenticated = client.get("/api/v1/me")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json["request_id"] == unauthenticated.headers["X-Request-ID"]


def test_log_lines_carry_the_request_id(client, admin, caplog):
    with caplog.at_level(logging.INFO, logger="postrag.access"):
        client.get("/api/v1/me", headers={**admin, "X-Request-ID": "trace-me"})
    lines = [r for r in caplog.records if r.name == "postrag.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line.request_id == "trace-me"
    assert (line.method, line.route, line.status) == ("GET", "/api/v1/me", 200)
    assert line.user_id is not None and line.duration_ms >= 0
    as_json = json.loads(logs.JsonFormatter().format(line))
    assert as_json["request_id"] == "trace-me" and as_json["route"] == "/api/v1/me"
    assert as_json["message"].startswith("GET /api/v1/me 200")


def test_metrics_need_the_metrics_token_or_an_admin(make_app, admin, new_user):
    app = make_app(metrics_token="m" * 32)
    client = app.test_client()
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.content_type == "application/problem+json"
    assert client.get("/metrics", headers=bearer("m" * 31)).status_code == 401
    assert client.get("/metrics", headers=new_user()).status_code == 403
    assert client.get("/metrics", headers=admin).status_code == 200
    assert client.get("/metrics", headers=bearer("m" * 32)).status_code == 200
    # Without a metrics token only admins get in; the empty token is not a way in.
    plain = make_app().test_client()
    assert plain.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    assert plain.get("/metrics", headers=admin).status_code == 200


def test_metrics_count_requests_searches_jobs_and_ingestion(app, client, admin, collection):
    before = samples(client, admin)
    for _ in range(3):
        assert client.get("/api/v1/me", headers=admin).status_code == 200
    assert client.get("/api/v1/collections/999999", headers=admin).status_code == 404
    upload(client, admin, collection, "a.txt", "Kittens purr on warm windowsills.")
    upload(client, admin, collection, "b.txt", "Puppies chase balls across the park.")
    queued = samples(client, admin)
    assert value(queued, "postrag_jobs", kind="ingest_document", state="queued") == 2
    assert value(queued, "postrag_job_oldest_due_age_seconds") > 0
    assert value(queued, "postrag_documents", status="queued") == 2
    assert drain(app) == 2
    for mode in ("semantic", "hybrid", "fulltext", "hybrid"):
        found = client.post(
            SEARCH,
            json={"query": "kittens", "mode": mode, "collection_ids": [collection]},
            headers=admin,
        )
        assert found.status_code == 200 and found.json["hits"]
    after = samples(client, admin)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    http = "postrag_http_request_duration_seconds_count"
    assert grew(http, route="/api/v1/me", method="GET", status="200") == 3
    assert grew(http, route="/api/v1/collections/<int:collection_id>", method="GET", status="404")
    assert grew(http, route=SEARCH, method="POST", status="200") == 4
    assert grew("postrag_search_duration_seconds_count", mode="hybrid") == 2
    assert grew("postrag_search_duration_seconds_count", mode="semantic") == 1
    assert grew("postrag_search_duration_seconds_count", mode="fulltext") == 1
    assert grew("postrag_ingested_documents_total", outcome="indexed") == 2
    assert grew("postrag_ingested_chunks_total") >= 2
    assert grew("postrag_ingestion_duration_seconds_count") == 2
    assert value(after, "postrag_jobs", kind="ingest_document", state="queued") == 0
    assert value(after, "postrag_job_oldest_due_age_seconds") == 0
    assert value(after, "postrag_documents", status="indexed") == 2


def test_a_document_its_dead_worker_left_on_its_last_attempt_counts_as_failed(
    app, client, admin, collection, database_url
):
    """Only failures a worker saw itself were counted; a document failed because its worker died
    on the last attempt was not (issue 17)."""
    from app.repositories import jobs as job_repo
    from app.services.worker import connect

    before = samples(client, admin)
    doc = upload(client, admin, collection, "x.txt", "Its worker dies.")
    with connect(database_url) as conn:
        conn.execute("UPDATE jobs SET max_attempts = 1")
        assert job_repo.claim(conn, worker_id="dead", lease_s=1, space_id=0) is not None
    time.sleep(1.2)
    assert drain(app) == 0
    assert client.get(f"/api/v1/documents/{doc}", headers=admin).json["status"] == "failed"
    after = samples(client, admin)
    name, failed = "postrag_ingested_documents_total", {"outcome": "failed"}
    assert value(after, name, **failed) - value(before, name, **failed) == 1


def test_metrics_time_language_model_answers_and_count_tokens(ollama_app, admin, llm):
    client = ollama_app.test_client()
    before = samples(client, admin)
    chat = new_chat(client, admin)
    answered = ask(client, admin, chat, "Say hello.")
    assert answered.status_code == 201, answered.json
    after = samples(client, admin)
    name = "postrag_llm_request_duration_seconds_count"
    labels = {"provider": "ollama", "outcome": "complete"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    for kind in ("prompt", "completion"):
        counted = "postrag_llm_tokens_total"
        grown = value(after, counted, provider="ollama", kind=kind)
        assert grown - value(before, counted, provider="ollama", kind=kind) > 0


def test_serve_logs_json_and_sums_metrics_over_its_worker_processes(database_url, tmp_path):
    """Two gunicorn workers: every stderr line is JSON, and a scrape counts both workers' work."""
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "POSTRAG_DATA_DIR": str(data_dir),
        "POSTRAG_LOG_FORMAT": "json",
        "POSTRAG_WORKERS": "0",
    }
    # The operator's metrics directory, with a stale file a crashed run left: emptied at start
    # (unreadable, it would turn every scrape into an error).
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "histogram_99999.db").write_bytes(b"left over")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    server, base = start_serve(env, "--workers", "2", "--threads", "2")
    try:
        for i in range(30):
            assert http_get(f"{base}/healthz", {"X-Request-ID": f"probe-{i}"})[0] == 200
        token = admin_token_in(data_dir)
        status, body = http_get(f"{base}/metrics", bearer(token))
        assert status == 200, body
        assert not (metrics_dir / "histogram_99999.db").exists()
        assert list(metrics_dir.glob("histogram_*.db"))  # the workers write theirs there
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    healthz = ("route", "/healthz"), ("method", "GET"), ("status", "200")
    # The readiness polls plus the 30 probes, whichever worker served them.
    assert found[("postrag_http_request_duration_seconds_count", tuple(sorted(healthz)))] >= 31
    lines = [line for line in stderr.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line, gunicorn's included
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    probes = [e for e in entries if e.get("request_id", "").startswith("probe-")]
    assert len(probes) == 30
    assert {e["logger"] for e in probes} == {"postrag.access"}
    assert all(e["route"] == "/healthz" and e["status"] == 200 for e in probes)
    assert any(e["logger"] == "gunicorn.error" for e in entries)
