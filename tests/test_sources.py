"""Sources (V2_13): create, sync as jobs, incremental re-syncs, resume after a crash, failures,
deletion, and bad requests. A scripted source stands in for the remote systems here; the
clients of Confluence, Jira and websites are tested against their fake servers."""

from __future__ import annotations

import threading
from dataclasses import replace

import psycopg
import pytest
from psycopg.rows import dict_row

from app.db import scope
from app.providers.source_items import Access, Item, ItemGone, Listed, Listing, SourceFailed
from app.repositories import access_sets as access_repo
from app.repositories import sources as source_repo
from app.repositories import staging
from app.runtime import Runtime
from app.services import source_readers
from app.services.job_kinds import schedule_sources
from app.services.worker import Worker
from tests.fake_confluence import FakeConfluence, FakePage
from tests.fake_jira import FakeJira
from tests.helpers import create_collection, drain, run, upload

PAGE = 2  # items per listing page
KEY = "k1-" + "abcdefghijklmnopqrstuvwxyz0123456789"
LOOPBACK = ("127.0.0.1",)  # where the fake servers listen: sources may reach it when listed


class ScriptedSource:
    """A source whose pages are `pages` (key -> (version, text)), listed PAGE at a time."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, str]] = {}
        self.fetched: list[str] = []
        self.fail_listing_at: int | None = None  # listing offset that raises once
        self.refuse_at: int | None = None  # listing offset that answers SourceFailed
        self.expired_cursor: str | None = None  # a cursor the source no longer takes
        self.gone: set[str] = set()  # deleted between listing and fetch
        self.readers: dict[str, Access | None] = {}  # who may read each page (default: all)

    def list_items(self, cursor: str | None) -> Listing:
        start = int(cursor or 0)
        if start == self.fail_listing_at:
            self.fail_listing_at = None
            raise RuntimeError("the worker died here")
        if cursor is not None and cursor == self.expired_cursor:
            self.expired_cursor = None  # the cursors of a new listing are new
            raise SourceFailed("web source rejected the search: the page token has expired")
        if start == self.refuse_at:
            raise SourceFailed("web source answered 403 for /private")
        keys = sorted(self.pages)[start : start + PAGE]
        items = tuple(Listed(key, self.pages[key][0], key) for key in keys)
        more = start + PAGE < len(self.pages)
        return Listing(items, str(start + PAGE) if more else None)

    def fetch(self, key: str) -> Item:
        self.fetched.append(key)
        if key in self.gone:
            raise ItemGone(key)
        version, text = self.pages[key]
        url = f"https://wiki.example/{key}"
        return Item(key, version, f"Page {key}", url, text, {"space": "ENG"})

    def access(self, key: str) -> Access | None:
        return self.readers.get(key, Access(everyone=True))


@pytest.fixture
def scripted(monkeypatch):
    source = ScriptedSource()
    monkeypatch.setitem(source_readers.READERS, "web", lambda config, http: source)
    return source


def _drain_without_retries(app) -> None:
    """Run the due jobs with an hour's backoff, so a failed job waits for its retry however
    slowly this machine runs (the tests then make the retry due themselves)."""
    runtime = Runtime.of(app)
    settings = replace(runtime.settings, job_retry_base_s=3600)
    drain(app, worker=Worker(settings.database_url, settings, runtime.embedder))


def _create(client, headers, collection: int, name: str = "wiki", **extra):
    body = {
        "kind": "web",
        "collection_id": collection,
        "name": name,
        "config": {"urls": ["https://wiki.example/"]},
        **extra,
    }
    return client.post("/api/v1/sources", json=body, headers=headers)


def _runs(client, headers, source: int) -> list[dict]:
    response = client.get(f"/api/v1/sources/{source}/runs", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["items"]


def _documents(client, headers, collection: int) -> dict[str, dict]:
    page = client.get(f"/api/v1/documents?collection_id={collection}&limit=100", headers=headers)
    return {d["metadata"]["source_key"]: d for d in page.json["items"]}


def _counts(run: dict) -> tuple[int, ...]:
    return tuple(run[c] for c in ("added", "updated", "deleted", "unchanged", "failed"))


def test_a_source_syncs_then_resyncs_only_what_changed(app, client, admin, scripted):
    collection = create_collection(client, admin, "wiki")
    scripted.pages = {f"page:{i}": ("1", f"Text of page {i} about valves.") for i in range(5)}
    created = _create(client, admin, collection)
    assert created.status_code == 201, created.json
    source = created.json["id"]
    assert created.headers["Location"].endswith(f"/api/v1/sources/{source}")
    assert created.json["config"]["max_pages"] == 200  # defaults filled in
    drain(app)
    [run] = _runs(client, admin, source)
    assert run["state"] == "succeeded" and _counts(run) == (5, 0, 0, 0, 0)
    documents = _documents(client, admin, collection)
    assert set(documents) == set(scripted.pages)
    assert {d["status"] for d in documents.values()} == {"indexed"}
    assert documents["page:0"]["metadata"]["url"] == "https://wiki.example/page:0"
    assert documents["page:0"]["metadata"]["space"] == "ENG"

    scripted.fetched.clear()
    scripted.pages["page:1"] = ("2", "Page 1 now speaks of pumps.")
    del scripted.pages["page:3"]
    scripted.pages["page:9"] = ("1", "A new page about gaskets.")
    synced = client.post(f"/api/v1/sources/{source}/sync", headers=admin)
    assert synced.status_code == 202 and synced.json["state"] == "queued"
    again = client.post(f"/api/v1/sources/{source}/sync", headers=admin)
    assert again.status_code == 409  # one run at a time
    drain(app)
    run = _runs(client, admin, source)[0]
    assert run["state"] == "succeeded" and _counts(run) == (1, 1, 1, 3, 0)
    assert sorted(scripted.fetched) == ["page:1", "page:9"]  # nothing unchanged fetched again
    documents = _documents(client, admin, collection)
    assert set(documents) == {"page:0", "page:1", "page:2", "page:4", "page:9"}
    assert documents["page:1"]["id"] != documents["page:9"]["id"]
    content = client.get(f"/api/v1/documents/{documents['page:1']['id']}/content", headers=admin)
    assert content.get_data(as_text=True) == "Page 1 now speaks of pumps."
    hits = client.post("/api/v1/search", json={"query": "pumps"}, headers=admin).json["hits"]
    assert hits[0]["document_id"] == documents["page:1"]["id"]


def test_a_crashed_run_resumes_at_its_checkpoint_fetching_each_page_once(
    app, client, admin, scripted, database_url
):
    collection = create_collection(client, admin, "wiki")
    scripted.pages = {f"page:{i}": ("1", f"Page number {i}.") for i in range(6)}
    scripted.fail_listing_at = 4  # after two listing pages were done
    source = _create(client, admin, collection).json["id"]
    _drain_without_retries(app)
    [run] = _runs(client, admin, source)
    assert run["state"] == "running" and run["added"] == 4
    with psycopg.connect(database_url, autocommit=True) as conn:  # the retry's backoff is over
        conn.execute("UPDATE jobs SET run_after = now() WHERE state = 'queued'")
    drain(app)
    [run] = _runs(client, admin, source)
    assert run["state"] == "succeeded" and _counts(run) == (6, 0, 0, 0, 0)
    assert sorted(scripted.fetched) == sorted(scripted.pages)  # every page once
    assert len(_documents(client, admin, collection)) == 6


def test_a_resumed_run_whose_cursor_expired_lists_again_from_the_start(
    app, client, admin, scripted, database_url
):
    collection = create_collection(client, admin, "wiki")
    scripted.pages = {f"page:{i}": ("1", f"Page number {i}.") for i in range(6)}
    scripted.fail_listing_at = 4
    source = _create(client, admin, collection).json["id"]
    _drain_without_retries(app)
    assert _runs(client, admin, source)[0]["state"] == "running"  # waiting for its retry
    scripted.expired_cursor = "4"  # by the time the run resumes
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE jobs SET run_after = now() WHERE state = 'queued'")
    drain(app)
    [run] = _runs(client, admin, source)
    assert run["state"] == "succeeded" and run["added"] == 6
    assert sorted(scripted.fetched) == sorted(scripted.pages)  # still every page once


def test_a_refusing_source_fails_the_run_and_keeps_whole_documents(app, client, admin, scripted):
    collection = create_collection(client, admin, "wiki")
    scripted.pages = {f"page:{i}": ("1", f"Page number {i}.") for i in range(4)}
    scripted.refuse_at = 2
    scripted.gone = {"page:1"}
    source = _create(client, admin, collection).json["id"]
    drain(app)
    [run] = _runs(client, admin, source)
    assert run["state"] == "failed" and "403" in run["error"]
    # No complete listing: nothing was removed; what the first page brought is whole.
    assert set(_documents(client, admin, collection)) == {"page:0"}
    scripted.refuse_at = None
    client.post(f"/api/v1/sources/{source}/sync", headers=admin)
    drain(app)
    run = _runs(client, admin, source)[0]
    assert run["state"] == "succeeded" and set(_documents(client, admin, collection)) == {
        "page:0",
        "page:2",
        "page:3",
    }


def test_deleting_a_source_deletes_its_documents_only(app, client, admin, scripted):
    collection = create_collection(client, admin, "wiki")
    scripted.pages = {"page:1": ("1", "Synced text.")}
    own = client.post(
        "/api/v1/documents",
        json={"collection_id": collection, "text": "Uploaded by hand.", "title": "mine"},
        headers=admin,
    )
    source = _create(client, admin, collection).json["id"]
    drain(app)
    assert client.delete(f"/api/v1/sources/{source}", headers=admin).status_code == 204
    left = client.get(f"/api/v1/documents?collection_id={collection}", headers=admin).json
    assert [d["id"] for d in left["items"]] == [own.json["id"]]
    assert client.get(f"/api/v1/sources/{source}", headers=admin).status_code == 404


def test_bad_sources_are_refused_with_problems(app, client, admin, new_user, scripted):
    collection = create_collection(client, admin, "wiki")
    bob = new_user("bob")
    cases = [
        (_create(client, bob, collection), 404),  # a collection bob cannot see
        (_create(client, admin, 999999), 404),
        (_create(client, admin, collection, config={"urls": []}), 422),
        (_create(client, admin, collection, config={"urls": ["ftp://x"]}), 422),
        (_create(client, admin, collection, config={"urls": ["https://a/"], "x": 1}), 422),
        (_create(client, admin, collection, connector="atlassian"), 422),
        (_create(client, admin, collection, kind="jira", config={"jql": "x"}), 422),
        (_create(client, admin, collection, schedule_minutes=5), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, response.json
        assert response.mimetype == "application/problem+json"
    assert _create(client, admin, collection).status_code == 201
    assert _create(client, admin, collection).status_code == 409  # the same name
    client.post(
        f"/api/v1/collections/{collection}/shares",
        json={"principal": {"type": "user", "name": "bob"}, "role": "reader"},
        headers=admin,
    )
    assert _create(client, bob, collection, name="b").status_code == 403  # read-only
    source = client.get("/api/v1/sources", headers=admin).json["items"][0]["id"]
    assert client.get(f"/api/v1/sources/{source}", headers=bob).status_code == 404
    assert client.post(f"/api/v1/sources/{source}/sync", headers=bob).status_code == 404
    paused = client.patch(f"/api/v1/sources/{source}", json={"paused": True}, headers=admin)
    assert paused.status_code == 200 and paused.json["paused"] is True
    bad = client.patch(f"/api/v1/sources/{source}", json={"config": {"urls": 1}}, headers=admin)
    assert bad.status_code == 422 and bad.json["errors"][0]["loc"][:2] == ["body", "config"]


def test_sources_reach_no_private_address_and_send_no_token_outside_atlassian(make_app, admin):
    from tests.fake_site import FakeSite, Page, html

    app = make_app(secret_key=KEY)  # no POSTRAG_SOURCE_HOSTS: public addresses only
    client = app.test_client()
    collection = create_collection(client, admin, "wiki")
    atlassian = {"connector": "atlassian"}
    refused = {
        "metadata": ({"urls": ["http://169.254.169.254/latest/meta-data/"]}, {}, "urls.0"),
        "database": ({"urls": ["http://localhost:5432/"]}, {}, "urls.0"),
        "prefix": (
            {"urls": ["https://a.example/"], "allowed_prefixes": ["http://10.0.0.1/"]},
            {},
            "allowed_prefixes.0",
        ),
        "credentials": ({"urls": ["https://user@a.example/"]}, {}, "urls.0"),
        "bad port": ({"urls": ["http://a.example:99999/"]}, {}, "urls.0"),
        "token elsewhere": ({"base_url": "https://evil.example", "spaces": ["X"]}, atlassian, ""),
        "private wiki": ({"base_url": "http://10.0.0.5", "spaces": ["X"]}, atlassian, ""),
    }
    for why, (config, extra, at) in refused.items():
        kind = "confluence" if "base_url" in config else "web"
        response = _create(client, admin, collection, name=why, kind=kind, config=config, **extra)
        assert response.status_code == 422, (why, response.json)
        assert response.json["errors"][0]["loc"][:2] == ["body", "config"], why
        assert f"config at {at or 'base_url'}" in response.json["detail"], (why, response.json)
    # A name that resolves to this machine passes the form, and its run reaches nothing.
    with FakeSite() as site:
        site.pages["/"] = Page(html("Inside", "<p>Internal only.</p>", ()))
        hidden = site.url.replace("127.0.0.1", "0x7f000001") + "/"
        created = _create(client, admin, collection, config={"urls": [hidden], "delay_s": 0})
        assert created.status_code == 201, created.json
        drain(app)
        assert site.requests == []
    [run] = _runs(client, admin, created.json["id"])
    assert run["state"] == "failed" and "non-public address (127.0.0.1)" in run["error"], run
    listed = make_app(source_hosts=("10.0.0.0/8",)).test_client()
    body = {"base_url": "http://10.0.0.5", "spaces": ["X"]}
    allowed = _create(
        listed, admin, collection, name="intranet", kind="confluence", config=body, **atlassian
    )
    assert allowed.status_code == 201, allowed.json  # an admin listed the network


def test_scheduled_sources_are_synced_when_due_and_not_while_paused(
    app, client, admin, scripted, database_url
):
    collection = create_collection(client, admin, "wiki")
    scripted.pages = {"page:1": ("1", "Scheduled text.")}
    source = _create(client, admin, collection, schedule_minutes=15).json["id"]
    drain(app)  # the first run, and a tick that finds nothing due yet
    assert [r["trigger"] for r in _runs(client, admin, source)] == ["created"]

    def due_now() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE sources SET next_run_at = now() - interval '1 second'")
            conn.execute(
                "UPDATE jobs SET run_after = now()"
                " WHERE kind = 'schedule_sources' AND state = 'queued'"
            )

    due_now()
    drain(app)
    runs = _runs(client, admin, source)
    assert [r["trigger"] for r in runs] == ["schedule", "created"]
    assert runs[0]["state"] == "succeeded" and runs[0]["unchanged"] == 1
    client.patch(f"/api/v1/sources/{source}", json={"paused": True}, headers=admin)
    due_now()
    drain(app)
    assert len(_runs(client, admin, source)) == 2  # paused: not synced on schedule
    ticks = "SELECT count(*) FROM jobs WHERE kind = 'schedule_sources' AND state = 'queued'"
    with psycopg.connect(database_url) as conn:  # and the clock stopped: nothing scheduled
        assert conn.execute(ticks).fetchone() == (0,)
    resumed = client.patch(f"/api/v1/sources/{source}", json={"paused": False}, headers=admin)
    assert resumed.status_code == 200 and resumed.json["paused"] is False
    # A tick whose last attempt failed (a database that blinked) queues the next one.
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("DELETE FROM jobs WHERE kind = 'schedule_sources'")
        schedule_sources.KIND.on_final_failure(conn, None, "connection lost")  # type: ignore[arg-type]
        assert conn.execute(ticks).fetchone() == {"count": 1}
    on_demand = {"schedule_minutes": None}
    changed = client.patch(f"/api/v1/sources/{source}", json=on_demand, headers=admin)
    assert changed.status_code == 200 and changed.json["schedule_minutes"] is None, changed.json


def test_a_jira_source_syncs_issues_with_the_owners_atlassian_token(make_app, admin):
    app = make_app(secret_key=KEY, source_hosts=LOOPBACK)
    client = app.test_client()
    grant = {"access_token": "at-secret-0", "refresh_token": "rt-0", "expires_in": 3600}
    assert client.put("/api/v1/connectors/atlassian", json=grant, headers=admin).status_code == 200
    collection = create_collection(client, admin, "tickets")
    with FakeJira(token="at-secret-0") as jira:
        jira.add_issue("10001", "ENG-1", "The valve leaks", updated="2026-11-01T10:00:00.000+0000")
        jira.add_issue("10002", "ENG-2", "Pump noise", updated="2026-11-02T10:00:00.000+0000")
        jira.add_issue("10050", "OPS-1", "Elsewhere")
        created = client.post(
            "/api/v1/sources",
            json={
                "kind": "jira",
                "connector": "atlassian",
                "collection_id": collection,
                "name": "eng",
                "config": {"base_url": jira.url, "jql": "project = ENG"},
            },
            headers=admin,
        )
        assert created.status_code == 201, created.json
        drain(app)
    [run] = _runs(client, admin, created.json["id"])
    assert run["state"] == "succeeded" and run["added"] == 2, run
    documents = _documents(client, admin, collection)
    assert set(documents) == {"issue:10001", "issue:10002"}
    assert documents["issue:10001"]["metadata"]["url"].endswith("/browse/ENG-1")
    hits = client.post("/api/v1/search", json={"query": "valve leaks"}, headers=admin).json
    assert hits["hits"][0]["document_id"] == documents["issue:10001"]["id"]


def test_permissions_follow_the_source_under_rls(
    app, client, admin, new_user, scripted, database_url
):
    collection = create_collection(client, admin, "wiki", is_shared=True)  # every user reads it
    bob, carol = new_user("bob"), new_user("carol")
    ids = {
        name: client.get("/api/v1/me", headers=h).json["id"]
        for name, h in (("bob", bob), ("carol", carol))
    }
    group = client.post("/api/v1/groups", json={"name": "eng"}, headers=admin).json["id"]
    client.post(f"/api/v1/groups/{group}/members", json={"user_id": ids["bob"]}, headers=admin)
    scripted.pages = {
        "page:open": ("1", "The cafeteria opens at eight."),
        "page:eng": ("1", "The deployment password rotates every quarter."),
        "page:secret": ("1", "The merger with Initech closes in May."),
    }
    scripted.readers = {
        "page:eng": Access(groups=("eng", "unknown-group"), account_ids=("unlinked-account",)),
        "page:secret": None,  # the source could not say: its owner alone
    }
    _create(client, admin, collection)
    drain(app)

    def visible(headers) -> set[str]:
        return set(_documents(client, headers, collection))

    assert visible(admin) == {"page:open", "page:eng", "page:secret"}  # the source's owner
    assert visible(bob) == {"page:open", "page:eng"}
    assert visible(carol) == {"page:open"}
    assert [
        h["filename"]
        for h in client.post(
            "/api/v1/search", json={"query": "deployment password"}, headers=carol
        ).json["hits"]
    ] == []
    bob_hits = client.post(
        "/api/v1/search", json={"query": "deployment password"}, headers=bob
    ).json["hits"]
    assert bob_hits and bob_hits[0]["text"].startswith("The deployment password")
    with psycopg.connect(database_url, autocommit=True) as conn:
        chunks = {
            key: {
                r[0]
                for r in conn.execute(
                    "SELECT c.id FROM document_chunks c JOIN documents d ON d.id = c.document_id"
                    " WHERE d.metadata->>'source_key' = %s",
                    (key,),
                )
            }
            for key in scripted.pages
        }
        with scope.acting_as(conn, ids["carol"]):  # no application filter at all
            assert {r[0] for r in conn.execute("SELECT id FROM document_chunks")} == chunks[
                "page:open"
            ]
            seen = {r[0] for r in conn.execute("SELECT chunk_id FROM chunk_embeddings")}
            assert seen == chunks["page:open"]
            assert conn.execute("SELECT count(*) FROM documents").fetchone() == (1,)

    # The eng page's readers change at the source: the next sync moves it, without a fetch.
    scripted.fetched.clear()
    scripted.readers["page:eng"] = None
    client.post(f"/api/v1/sources/{_sources(client, admin)[0]}/sync", headers=admin)
    drain(app)
    assert scripted.fetched == []
    assert visible(bob) == {"page:open"}
    assert visible(admin) == {"page:open", "page:eng", "page:secret"}


def _sources(client, headers) -> list[int]:
    return [s["id"] for s in client.get("/api/v1/sources", headers=headers).json["items"]]


def test_the_cli_adds_lists_syncs_and_deletes_sources(app, client, admin, cli_env):
    collection = create_collection(client, admin, "site")
    config = '{"urls": ["https://wiki.example/"]}'
    added = run(
        "sources",
        "add",
        "web",
        "--collection",
        str(collection),
        "--name",
        "site",
        "--config",
        config,
        "--schedule",
        "60",
        env=cli_env,
    )
    assert added.returncode == 0, added.stderr
    source = int(added.stdout.strip())
    listed = run("sources", "list", env=cli_env)
    assert f"{source}\tweb\tcollection {collection}\tsite\tevery 60 min" in listed.stdout
    queued = run("sources", "sync", str(source), env=cli_env)
    assert queued.returncode == 1 and "queued or running already" in queued.stderr  # the first
    runs = run("sources", "runs", str(source), env=cli_env)
    assert runs.stdout.split("\t")[1] == "queued"
    assert run("sources", "pause", str(source), env=cli_env).returncode == 0
    assert run("sources", "list", env=cli_env).stdout.strip().endswith("every 60 min, paused")
    assert run("sources", "resume", str(source), env=cli_env).returncode == 0
    assert run("sources", "list", env=cli_env).stdout.strip().endswith("every 60 min")
    assert run("sources", "pause", "999999", env=cli_env).returncode == 2  # no such source
    bad = run(
        "sources",
        "add",
        "web",
        "--collection",
        str(collection),
        "--name",
        "x",
        "--config",
        '{"urls": []}',
        env=cli_env,
    )
    assert bad.returncode == 2 and "--config" in bad.stderr, bad.stderr
    not_json = run(
        "sources",
        "add",
        "web",
        "--collection",
        str(collection),
        "--name",
        "y",
        "--config",
        "{",
        env=cli_env,
    )
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
    gone = run("sources", "delete", str(source), "--yes", env=cli_env)
    assert gone.returncode == 0 and run("sources", "list", env=cli_env).stdout == ""
    assert run("sources", "runs", str(source), env=cli_env).returncode == 2  # no such source


def test_a_web_source_indexes_pages_then_resyncs_edits_and_deletions(make_app, admin):
    from tests.fake_site import FakeSite, Page, html

    app = make_app(source_hosts=LOOPBACK)  # the fake site is on 127.0.0.1
    client = app.test_client()
    collection = create_collection(client, admin, "site")
    with FakeSite() as site:
        links = ("valves.html", "pumps.html", "gaskets.html")
        site.pages["/docs/"] = Page(html("Handbook", "<p>The plant handbook.</p>", links))
        site.pages["/docs/valves.html"] = Page(
            html("Valves", "<p>Install the XR-7734 valve before pressurising.</p>"), etag='"v1"'
        )
        site.pages["/docs/pumps.html"] = Page(html("Pumps", "<p>Centrifugal pumps hum.</p>"))
        site.pages["/docs/gaskets.html"] = Page(html("Gaskets", "<p>Rubber gaskets seal.</p>"))
        config = {"urls": [f"{site.url}/docs/"], "delay_s": 0}
        created = _create(client, admin, collection, name="handbook", config=config)
        assert created.status_code == 201, created.json
        drain(app)
        [run] = _runs(client, admin, created.json["id"])
        assert run["state"] == "succeeded" and _counts(run) == (4, 0, 0, 0, 0), run
        documents = _documents(client, admin, collection)
        valves = documents[f"{site.url}/docs/valves.html"]
        assert valves["status"] == "indexed" and valves["title"] == "Valves"
        assert valves["metadata"]["etag"] == '"v1"'
        hits = client.post("/api/v1/search", json={"query": "XR-7734 valve"}, headers=admin).json
        assert hits["hits"][0]["document_id"] == valves["id"]

        site.pages["/docs/pumps.html"] = Page(html("Pumps", "<p>Pumps now push crude oil.</p>"))
        del site.pages["/docs/gaskets.html"]
        synced = client.post(f"/api/v1/sources/{created.json['id']}/sync", headers=admin)
        assert synced.status_code == 202
        drain(app)
    run = _runs(client, admin, created.json["id"])[0]
    assert run["state"] == "succeeded" and _counts(run) == (0, 1, 1, 2, 0), run
    documents = _documents(client, admin, collection)
    assert f"{site.url}/docs/gaskets.html" not in documents
    hits = client.post("/api/v1/search", json={"query": "crude oil"}, headers=admin).json["hits"]
    assert hits[0]["document_id"] == documents[f"{site.url}/docs/pumps.html"]["id"]


def _connected(make_app, admin):  # type: ignore[no-untyped-def]
    """An app whose admin has connected Atlassian (token-1, the fake Confluence's), and a
    collection every user reads."""
    app = make_app(secret_key=KEY, source_hosts=LOOPBACK)
    client = app.test_client()
    grant = {"access_token": "token-1", "refresh_token": "rt-0", "expires_in": 3600}
    assert client.put("/api/v1/connectors/atlassian", json=grant, headers=admin).status_code == 200
    return app, client, create_collection(client, admin, "wiki", is_shared=True)


def test_two_users_with_different_confluence_access_see_different_answers(
    make_app, admin, new_user
):
    app, client, collection = _connected(make_app, admin)
    bob, carol = new_user("bob"), new_user("carol")
    bob_id = client.get("/api/v1/me", headers=bob).json["id"]
    group = client.post("/api/v1/groups", json={"name": "engineers"}, headers=admin).json["id"]
    client.post(f"/api/v1/groups/{group}/members", json={"user_id": bob_id}, headers=admin)
    with FakeConfluence() as confluence:
        confluence.add_space("ENG", readers=[("group", "g-eng"), ("user", "u-boss")])
        confluence.add_space("OPS", readers=[("user", "ANONYMOUS")])
        confluence.groups.update({"g-eng": "engineers"})
        body = "<h1>Rollout</h1><p>The canary rollout starts on Tuesday at noon.</p>"
        confluence.add_page(FakePage("100", "Rollout plan", "ENG", body=body))
        lunch = "<p>The canteen serves soup on Fridays.</p>"
        confluence.add_page(FakePage("200", "Canteen", "OPS", body=lunch))
        created = client.post(
            "/api/v1/sources",
            json={
                "kind": "confluence",
                "connector": "atlassian",
                "collection_id": collection,
                "name": "wiki",
                "config": {"base_url": confluence.url, "spaces": ["ENG", "OPS"]},
            },
            headers=admin,
        )
        assert created.status_code == 201, created.json
        drain(app)
    [run] = _runs(client, admin, created.json["id"])
    assert run["state"] == "succeeded" and run["added"] == 2, run

    def answer(headers, question: str) -> list[str]:
        hits = client.post("/api/v1/search", json={"query": question}, headers=headers).json
        return [hit["filename"] for hit in hits["hits"]]

    assert answer(bob, "canary rollout Tuesday")  # bob is an engineer
    assert answer(carol, "canary rollout Tuesday") == []  # carol is not
    assert answer(carol, "canteen soup Fridays")  # the OPS space is everyone's
    documents = _documents(client, admin, collection)
    assert documents["page:100"]["metadata"]["url"].startswith(confluence.url)


def test_restrictions_naming_atlassian_accounts_reach_the_users_linked_to_them(
    make_app, admin, new_user
):
    app, client, collection = _connected(make_app, admin)
    dave, erin = new_user("dave"), new_user("erin")
    ids = {
        name: client.get("/api/v1/me", headers=h).json["id"]
        for name, h in (("dave", dave), ("erin", erin))
    }

    def link(name: str, account: str) -> None:
        url = f"/api/v1/users/{ids[name]}/accounts/atlassian"
        linked = client.put(url, json={"account_id": account}, headers=admin)
        assert linked.status_code == 200, linked.json

    def sees_the_plan(headers) -> bool:
        body = {"query": "canary rollout Tuesday"}
        return bool(client.post("/api/v1/search", json=body, headers=headers).json["hits"])

    link("dave", "557058:dave")
    with FakeConfluence() as confluence:
        confluence.add_space("ENG", readers=[("user", "557058:dave"), ("user", "557058:erin")])
        body = "<h1>Rollout</h1><p>The canary rollout starts on Tuesday at noon.</p>"
        confluence.add_page(FakePage("100", "Rollout plan", "ENG", body=body))
        config = {"base_url": confluence.url, "spaces": ["ENG"]}
        source = client.post(
            "/api/v1/sources",
            json={
                "kind": "confluence",
                "connector": "atlassian",
                "collection_id": collection,
                "name": "eng",
                "config": config,
            },
            headers=admin,
        ).json["id"]
        drain(app)
        assert sees_the_plan(dave) and not sees_the_plan(erin)  # erin's account is not linked

        link("erin", "557058:erin")  # takes effect at the next sync, which fetches nothing
        unlinked = client.delete(f"/api/v1/users/{ids['dave']}/accounts/atlassian", headers=admin)
        assert unlinked.status_code == 204
        assert client.post(f"/api/v1/sources/{source}/sync", headers=admin).status_code == 202
        drain(app)
    runs = _runs(client, admin, source)
    assert runs[0]["state"] == "succeeded" and _counts(runs[0])[:3] == (0, 0, 0), runs[0]
    assert sees_the_plan(erin) and not sees_the_plan(dave)


def test_an_access_change_during_an_ingestion_swap_reaches_the_new_chunks(
    app, client, admin, database_url, monkeypatch
):
    # A sync changing a document's readers while its ingestion swaps in new chunks: the change
    # must reach those chunks (else they would keep the old, wider readers until the page
    # changes again).
    collection = create_collection(client, admin, "race")
    admin_id = client.get("/api/v1/me", headers=admin).json["id"]
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        source = source_repo.insert_source(
            conn,
            owner_id=admin_id,
            collection_id=collection,
            kind="web",
            connector=None,
            name="race",
            config={"urls": ["https://example.com/"]},
            schedule_minutes=None,
        )
        narrow = access_repo.find_or_make(conn, source["id"], f"u{admin_id}", [admin_id], [])
    document = upload(client, admin, collection, "page.txt", "The release train leaves at noon.")
    changers: list[threading.Thread] = []
    original = staging.swap

    def change_access() -> None:
        with psycopg.connect(database_url, autocommit=True) as other:
            access_repo.set_document_access(other, document, narrow)

    def swap_then_change(conn, document_id, space_id):  # type: ignore[no-untyped-def]
        count = original(conn, document_id, space_id)
        changers.append(threading.Thread(target=change_access))
        changers[-1].start()
        changers[-1].join(timeout=1.0)  # it waits for this transaction (or, unlocked, is done)
        return count

    monkeypatch.setattr(staging, "swap", swap_then_change)
    assert drain(app) == 1
    changers[0].join(timeout=30)
    with psycopg.connect(database_url) as conn:
        sets = conn.execute(
            "SELECT DISTINCT access_set_id FROM document_chunks WHERE document_id = %s",
            (document,),
        ).fetchall()
    assert sets == [(narrow,)]
