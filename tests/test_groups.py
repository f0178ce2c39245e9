"""Groups: the provider's groups claim at every token, admin-defined groups and memberships."""

from __future__ import annotations

import threading

import psycopg
import pytest

from app.db import scope
from app.services import groups
from tests.helpers import bearer


@pytest.fixture
def oidc_app(make_app, provider):
    return make_app(oidc_issuer=provider.issuer, oidc_audience="postrag", oidc_groups_claim="grp")


@pytest.fixture
def oidc(oidc_app):
    return oidc_app.test_client()


def _sign_in(oidc, provider, sub: str, **claims) -> int:
    """The id of the user a fresh token of `sub` with `claims` names."""
    me = oidc.get("/api/v1/me", headers=bearer(provider.token(sub=sub, **claims)))
    assert me.status_code == 200, me.json
    return me.json["id"]


def _groups(oidc, admin) -> dict[str, dict]:
    page = oidc.get("/api/v1/groups?limit=100", headers=admin)
    assert page.status_code == 200, page.json
    return {group["name"]: group for group in page.json["items"]}


def _members(oidc, admin, group_id: int) -> list[tuple[int, str]]:
    page = oidc.get(f"/api/v1/groups/{group_id}/members", headers=admin)
    assert page.status_code == 200, page.json
    return [(member["user_id"], member["source"]) for member in page.json["items"]]


def test_groups_of_the_claim_appear_and_follow_every_token(oidc, provider, admin):
    alice = _sign_in(oidc, provider, "s-alice", grp=["/team-a", "/team-b", 7, "x" * 256, "a\x00"])
    groups = _groups(oidc, admin)
    assert set(groups) == {"/team-a", "/team-b"}  # what no group may be called is skipped
    assert {groups[name]["source"] for name in ("/team-a", "/team-b")} == {"provider"}
    assert _members(oidc, admin, groups["/team-a"]["id"]) == [(alice, "provider")]
    _sign_in(oidc, provider, "s-alice", grp="/team-b")  # one group as a string; left team-a
    assert _members(oidc, admin, groups["/team-a"]["id"]) == []
    assert _members(oidc, admin, groups["/team-b"]["id"]) == [(alice, "provider")]
    _sign_in(oidc, provider, "s-alice")  # no claim at all: in no provider group
    assert _members(oidc, admin, groups["/team-b"]["id"]) == []


def test_an_unchanged_claim_writes_nothing(oidc, provider, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Every statement that writes memberships, even one that changes no row, leaves a mark.
        conn.execute("CREATE TABLE membership_writes (at timestamptz DEFAULT now())")
        conn.execute(
            "CREATE FUNCTION mark_membership_write() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN INSERT INTO membership_writes DEFAULT VALUES; RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE TRIGGER mark AFTER INSERT OR UPDATE OR DELETE ON group_members"
            " FOR EACH STATEMENT EXECUTE FUNCTION mark_membership_write()"
        )
    _sign_in(oidc, provider, "s-same", grp=["/x", "/y"])

    def writes() -> int:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SELECT count(*) FROM membership_writes").fetchone()[0]

    assert writes() > 0
    before = writes()
    _sign_in(oidc, provider, "s-same", grp=["/y", "/x", "/x"])
    assert writes() == before
    _sign_in(oidc, provider, "s-same", grp=["/y"])
    assert writes() > before


def test_admin_made_memberships_survive_the_claim(oidc, provider, admin):
    bob = _sign_in(oidc, provider, "s-bob", grp=["/team-a"])
    team_a = _groups(oidc, admin)["/team-a"]["id"]
    ops = oidc.post("/api/v1/groups", json={"name": " ops "}, headers=admin)
    assert ops.status_code == 201, ops.json
    assert (ops.json["name"], ops.json["source"]) == ("ops", "admin")
    assert oidc.get(ops.headers["Location"], headers=admin).json == ops.json
    for group_id in (team_a, ops.json["id"]):
        members = f"/api/v1/groups/{group_id}/members"
        added = oidc.post(members, json={"user_id": bob}, headers=admin)
        assert added.status_code == 201, added.json
        assert (added.json["name"], added.json["source"]) == ("s-bob", "admin")
    _sign_in(oidc, provider, "s-bob", grp=[])
    assert _members(oidc, admin, team_a) == [(bob, "admin")]
    assert _members(oidc, admin, ops.json["id"]) == [(bob, "admin")]
    gone = oidc.delete(f"/api/v1/groups/{ops.json['id']}/members/{bob}", headers=admin)
    assert gone.status_code == 204
    assert _members(oidc, admin, ops.json["id"]) == []
    again = oidc.delete(f"/api/v1/groups/{ops.json['id']}/members/{bob}", headers=admin)
    assert again.status_code == 404


def test_a_claim_never_joins_an_admin_group_but_fills_a_provider_group_made_ahead(
    oidc, provider, admin
):
    finance = oidc.post("/api/v1/groups", json={"name": "finance"}, headers=admin).json
    ahead = oidc.post(
        "/api/v1/groups", json={"name": "/sales", "source": "provider"}, headers=admin
    ).json
    assert ahead["source"] == "provider"
    eve = _sign_in(oidc, provider, "s-eve", grp=["finance", "/sales"])
    assert _members(oidc, admin, finance["id"]) == []  # naming it in a claim is not enough
    assert _members(oidc, admin, ahead["id"]) == [(eve, "provider")]
    bad = oidc.post("/api/v1/groups", json={"name": "x", "source": "ldap"}, headers=admin)
    assert bad.status_code == 422


def test_group_endpoints_are_for_admins_only(oidc, provider, new_user, admin):
    group = oidc.post("/api/v1/groups", json={"name": "g"}, headers=admin).json["id"]
    for headers in (new_user(), bearer(provider.token(sub="s-plain"))):
        calls = (
            oidc.get("/api/v1/groups", headers=headers),
            oidc.post("/api/v1/groups", json={"name": "mine"}, headers=headers),
            oidc.get(f"/api/v1/groups/{group}", headers=headers),
            oidc.get(f"/api/v1/groups/{group}/members", headers=headers),
            oidc.post(f"/api/v1/groups/{group}/members", json={"user_id": 1}, headers=headers),
            oidc.delete(f"/api/v1/groups/{group}/members/1", headers=headers),
        )
        assert [call.status_code for call in calls] == [403] * 6
        assert all(call.content_type == "application/problem+json" for call in calls)
    assert set(_groups(oidc, admin)) == {"g"}


def test_groups_and_members_are_paginated(oidc, provider, admin):
    names = [f"team-{i}" for i in range(3)]
    for name in names:
        assert oidc.post("/api/v1/groups", json={"name": name}, headers=admin).status_code == 201
    first = oidc.get("/api/v1/groups?limit=2", headers=admin).json
    rest = oidc.get("/api/v1/groups?limit=2&offset=2", headers=admin).json
    assert (first["total"], first["limit"], first["offset"]) == (3, 2, 0)
    assert [g["name"] for g in first["items"] + rest["items"]] == names
    users = [_sign_in(oidc, provider, f"s-{i}", grp=["/big"]) for i in range(3)]
    big = _groups(oidc, admin)["/big"]["id"]
    page = oidc.get(f"/api/v1/groups/{big}/members?limit=1&offset=1", headers=admin).json
    assert (page["total"], [m["user_id"] for m in page["items"]]) == (3, [users[1]])


def test_duplicates_are_409_and_bad_input_422_or_404(oidc, provider, admin):
    made = oidc.post("/api/v1/groups", json={"name": "dup"}, headers=admin)
    taken = oidc.post("/api/v1/groups", json={"name": "dup"}, headers=admin)
    assert taken.status_code == 409 and taken.content_type == "application/problem+json"
    _sign_in(oidc, provider, "s-p", grp=["/prov"])
    assert oidc.post("/api/v1/groups", json={"name": "/prov"}, headers=admin).status_code == 409
    user = _sign_in(oidc, provider, "s-dup")
    members = f"/api/v1/groups/{made.json['id']}/members"
    assert oidc.post(members, json={"user_id": user}, headers=admin).status_code == 201
    twice = oidc.post(members, json={"user_id": user}, headers=admin)
    assert twice.status_code == 409 and twice.content_type == "application/problem+json"
    for name in ("", "  ", "a\x01b", "x" * 256):
        bad = oidc.post("/api/v1/groups", json={"name": name}, headers=admin)
        assert bad.status_code == 422, name
        assert bad.json["errors"][0]["loc"] == ["body", "name"]
    assert oidc.post(members, json={"user_id": 10**9}, headers=admin).status_code == 404
    nowhere = "/api/v1/groups/999999/members"
    assert oidc.get(nowhere, headers=admin).status_code == 404
    assert oidc.get("/api/v1/groups/999999", headers=admin).status_code == 404
    assert oidc.post(nowhere, json={"user_id": user}, headers=admin).status_code == 404
    assert oidc.delete(f"{nowhere}/{user}", headers=admin).status_code == 404


def test_an_empty_groups_claim_setting_leaves_memberships_alone(make_app, oidc, provider, admin):
    carol = _sign_in(oidc, provider, "s-carol", grp=["/a"])
    unread = make_app(oidc_issuer=provider.issuer, oidc_audience="postrag", oidc_groups_claim="")
    _sign_in(unread.test_client(), provider, "s-carol")
    assert _members(oidc, admin, _groups(oidc, admin)["/a"]["id"]) == [(carol, "provider")]


def test_under_rls_users_read_groups_and_only_admins_write_them(oidc, provider, database_url):
    user = _sign_in(oidc, provider, "s-rls", grp=["/seen"])
    with psycopg.connect(database_url, autocommit=True) as conn:
        with scope.acting_as(conn, user):
            assert conn.execute("SELECT name FROM groups").fetchall() == [("/seen",)]
            assert len(conn.execute("SELECT 1 FROM group_members").fetchall()) == 1
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("INSERT INTO groups (name, source) VALUES ('mine', 'admin')")
            deleted = conn.execute("DELETE FROM group_members RETURNING user_id").fetchall()
            assert deleted == []
        assert conn.execute("SELECT count(*) FROM group_members").fetchone()[0] == 1


def test_concurrent_tokens_naming_new_groups_all_get_in(oidc_app, oidc, provider, admin):
    subjects = ["s-c0", "s-c1", "s-c2", "s-c2"]  # one user twice: both requests succeed
    barrier = threading.Barrier(len(subjects))
    statuses: list[int] = []

    def call(sub: str) -> None:
        token = provider.token(sub=sub, grp=["/new-1", "/new-2"])
        client = oidc_app.test_client()
        barrier.wait()
        statuses.append(client.get("/api/v1/me", headers=bearer(token)).status_code)

    threads = [threading.Thread(target=call, args=(sub,)) for sub in subjects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(subjects)
    groups = _groups(oidc, admin)
    for name in ("/new-1", "/new-2"):
        assert len(_members(oidc, admin, groups[name]["id"])) == 3


def test_a_token_naming_too_many_groups_gets_the_first_thousand(oidc, provider, database_url):
    names = [f"/g{i:04}" for i in range(groups.MAX_PROVIDER_GROUPS + 1)]
    _sign_in(oidc, provider, "s-many", grp=names[::-1])
    with psycopg.connect(database_url) as conn:
        held = conn.execute(
            "SELECT count(*), min(g.name), max(g.name) FROM group_members m"
            " JOIN groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id"
            " WHERE u.subject = 's-many'"
        ).fetchone()
    assert held == (groups.MAX_PROVIDER_GROUPS, names[0], names[-2])
