"""The Jira source reader against a fake Jira Cloud speaking REST v3: listing with nextPageToken,
issues as text (ADF converted) with all their comments, access from permission schemes and
security levels (failing closed), and Jira's failures as SourceFailed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.providers.jira import JiraReader, ordered_jql
from app.providers.jira_text import adf_to_text
from app.providers.source_http import SourceHttp
from app.providers.source_items import Access, ItemGone, SourceFailed
from tests.fake_jira import FakeJira, adf, para, user

ALICE, BOB, CAROL = (
    user("acc-alice", "Alice Adams"),
    user("acc-bob", "Bob Brown"),
    user("acc-carol", "Carol Chen"),
)

DESCRIPTION = adf(
    {"type": "heading", "attrs": {"level": 1}, "content": [{"type": "text", "text": "Symptoms"}]},
    para(
        "Login fails for ",
        {"type": "mention", "attrs": {"id": "acc-bob", "text": "@Bob Brown"}},
        " after the ",
        {
            "type": "text",
            "text": "upgrade",
            "marks": [{"type": "link", "attrs": {"href": "https://x"}}],
        },
        " (see ",
        {"type": "inlineCard", "attrs": {"url": "https://acme.atlassian.net/browse/ENG-1"}},
        ").",
    ),
    {
        "type": "bulletList",
        "content": [
            {
                "type": "listItem",
                "content": [
                    para("Chrome"),
                    {
                        "type": "orderedList",
                        "attrs": {"order": 1},
                        "content": [{"type": "listItem", "content": [para("version 120")]}],
                    },
                ],
            },
            {"type": "listItem", "content": [para("Firefox")]},
        ],
    },
    {
        "type": "codeBlock",
        "attrs": {"language": "python"},
        "content": [{"type": "text", "text": "raise LoginError()"}],
    },
    {
        "type": "table",
        "content": [
            {
                "type": "tableRow",
                "content": [
                    {"type": "tableHeader", "content": [para("Browser")]},
                    {"type": "tableHeader", "content": [para("Fails")]},
                ],
            },
            {
                "type": "tableRow",
                "content": [
                    {"type": "tableCell", "content": [para("Chrome")]},
                    {"type": "tableCell", "content": [para("yes")]},
                ],
            },
        ],
    },
    {
        "type": "panel",
        "attrs": {"panelType": "info"},
        "content": [para("Workaround: clear cookies")],
    },
    {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "m1", "type": "file"}}]},
)

EXPECTED_DESCRIPTION = """## Symptoms

Login fails for @Bob Brown after the upgrade (see https://acme.atlassian.net/browse/ENG-1).

- Chrome
  1. version 120
- Firefox

```python
raise LoginError()
```

| Browser | Fails |
| Chrome | yes |

Workaround: clear cookies"""


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as server:
        for number in range(1, 6):
            server.add_issue(
                str(10000 + number),
                f"ENG-{number}",
                f"Issue {number}",
                updated=f"2026-11-0{number}T10:00:00.000+0000",
            )
        server.add_issue("10050", "OPS-1", "Elsewhere")
        yield server


def reader(jira: FakeJira, jql: str = "project = ENG", **options: Any) -> JiraReader:
    http = SourceHttp("jira", lambda refresh: "at-1", sleep=jira_sleeps(jira).append)
    return JiraReader(jira.url, jql, http, page_size=options.pop("page_size", 2), **options)


def jira_sleeps(jira: FakeJira) -> list[float]:
    if not hasattr(jira, "sleeps"):
        jira.sleeps = []  # type: ignore[attr-defined]
    return jira.sleeps  # type: ignore[attr-defined, no-any-return]


def list_all(source: JiraReader, cursor: str | None = None) -> list[Any]:
    items = []
    while True:
        listing = source.list_items(cursor)
        items += listing.items
        if listing.cursor is None:
            return items
        cursor = listing.cursor


def test_the_listing_follows_next_page_tokens_to_the_end_in_key_order(jira):
    items = list_all(reader(jira, "project = ENG order by created DESC"))

    assert [(i.key, i.title) for i in items] == [
        (f"issue:{10000 + n}", f"ENG-{n}: Issue {n}") for n in range(1, 6)
    ]
    assert items[2].version == "2026-11-03T10:00:00.000+0000"
    searches = [q for path, q in jira.requests if path.endswith("/search/jql")]
    assert len(searches) == 3
    assert searches[0]["jql"] == "project = ENG ORDER BY key ASC"
    fields = set(searches[0]["fields"].split(","))
    assert fields == {"updated", "summary", "project", "security", "reporter", "assignee"}
    assert searches[0]["maxResults"] == "2"


def test_ordering_keeps_quoted_order_by_and_replaces_the_real_one():
    assert ordered_jql('summary ~ "order by" ORDER BY rank') == (
        'summary ~ "order by" ORDER BY key ASC'
    )
    assert ordered_jql("  ") == "ORDER BY key ASC"


def test_a_listing_resumes_from_its_cursor_without_repeating(jira):
    first = reader(jira).list_items(None)
    # A crash here: a new reader (a new run) resumes with the stored cursor.
    rest = list_all(reader(jira), first.cursor)

    keys = [i.key for i in first.items] + [i.key for i in rest]
    assert keys == [f"issue:{10000 + n}" for n in range(1, 6)]


def test_fetch_makes_text_and_metadata_from_an_adf_issue_and_all_its_comments(jira):
    comments = [
        {
            "author": [ALICE, BOB, CAROL][n % 3],
            "created": f"2026-11-0{n + 1}T12:00:00.000+0000",
            "body": adf(para(f"Comment {n}")),
        }
        for n in range(5)
    ]
    jira.add_issue(
        "10042",
        "ENG-42",
        "Login broken",
        description=DESCRIPTION,
        comments=comments,
        status={"name": "In Progress"},
        issuetype={"name": "Bug"},
        priority={"name": "High"},
        labels=["auth", "regression"],
        reporter=ALICE,
        assignee=BOB,
    )

    item = reader(jira).fetch("issue:10042")

    assert item.title == "ENG-42: Login broken"
    assert item.url == f"{jira.url}/browse/ENG-42"
    head = "# ENG-42: Login broken\n\nStatus: In Progress | Type: Bug | Priority: High\n\n"
    assert item.text.startswith(head + EXPECTED_DESCRIPTION + "\n\n## Comments\n\n")
    assert item.text.endswith("### Bob Brown, 2026-11-05T12:00:00.000+0000\n\nComment 4\n")
    assert [f"Comment {n}" in item.text for n in range(5)] == [True] * 5  # beyond the 2 embedded
    assert item.metadata == {
        "project": "ENG",
        "issue_key": "ENG-42",
        "status": "In Progress",
        "issue_type": "Bug",
        "priority": "High",
        "labels": ["auth", "regression"],
        "reporter_account_id": "acc-alice",
        "reporter": "Alice Adams",
        "assignee_account_id": "acc-bob",
        "assignee": "Bob Brown",
        "created": "2026-11-01T09:00:00.000+0000",
        "updated": "2026-11-02T10:00:00.000+0000",
    }
    assert item.version == "2026-11-02T10:00:00.000+0000"


def test_adf_unknown_nodes_give_their_text_and_odd_values_do_not_break():
    document = adf(
        {"type": "somethingNew", "content": [{"type": "text", "text": "kept"}]},
        {
            "type": "taskList",
            "content": [
                {
                    "type": "taskItem",
                    "attrs": {"state": "DONE"},
                    "content": [{"type": "text", "text": "a"}],
                },
                {
                    "type": "taskItem",
                    "attrs": {"state": "TODO"},
                    "content": [{"type": "text", "text": "b"}],
                },
            ],
        },
        {"type": "paragraph", "content": "not a list"},
        "not a node",
    )
    assert adf_to_text(document) == "kept\n\n- [x] a\n- [ ] b"
    assert adf_to_text(None) == "" and adf_to_text("plain *wiki*") == "plain *wiki*"
    deep: dict[str, Any] = {"type": "text", "text": "bottom"}
    for _ in range(5000):
        deep = {"type": "blockquote", "content": [deep]}
    assert adf_to_text(adf(deep)).endswith("bottom")


def test_a_deleted_issue_is_gone(jira):
    with pytest.raises(ItemGone):
        reader(jira).fetch("issue:99999")


def test_links_go_to_the_site_when_read_through_api_atlassian_com(jira):
    http = SourceHttp("jira", lambda refresh: "at-1")
    source = JiraReader(f"{jira.url}/ex/jira/cloud-1", "project = ENG", http)

    assert source.fetch("issue:10001").url == "https://acme.atlassian.net/browse/ENG-1"
    assert source.fetch("issue:10002").url == "https://acme.atlassian.net/browse/ENG-2"
    assert [path for path, _ in jira.requests].count("/rest/api/3/serverInfo") == 1


GROUP = {"type": "group", "parameter": "eng-team", "value": "a1b2-group-id"}
DEVELOPERS = {"type": "projectRole", "parameter": "10002", "value": "10002"}


def grant_browse(jira: FakeJira, *holders: dict[str, Any]) -> None:
    grants = [("BROWSE_PROJECTS", holder) for holder in holders]
    grants.append(("EDIT_ISSUES", {"type": "group", "parameter": "editors"}))  # not browsing
    jira.schemes["ENG"] = (10100, grants)
    jira.roles["ENG", "10002"] = [
        {
            "id": 1,
            "displayName": "Carol Chen",
            "type": "atlassian-user-role-actor",
            "actorUser": {"accountId": "acc-carol"},
        },
        {
            "id": 2,
            "displayName": "qa",
            "type": "atlassian-group-role-actor",
            "name": "qa",
            "actorGroup": {"name": "qa", "displayName": "qa", "groupId": "qa-id"},
        },
    ]


def test_access_joins_group_user_role_and_reporter_grants_of_browse_projects(jira):
    grant_browse(
        jira,
        GROUP,
        {"type": "user", "parameter": "acc-dave", "value": "acc-dave"},
        DEVELOPERS,
        {"type": "reporter"},
        {"type": "groupCustomField", "parameter": "x"},
    )
    jira.issues["10001"]["fields"]["reporter"] = ALICE

    assert reader(jira).access("issue:10001") == Access(
        everyone=False,
        account_ids=("acc-alice", "acc-carol", "acc-dave"),
        groups=("eng-team", "qa"),
    )


@pytest.mark.parametrize(
    "holder", [{"type": "anyone"}, {"type": "applicationRole", "parameter": ""}]
)
def test_access_is_everyone_when_any_jira_user_may_browse(jira, holder):
    grant_browse(jira, GROUP, holder)

    assert reader(jira).access("issue:10001") == Access(everyone=True)


def test_a_security_level_narrows_access_to_its_members(jira):
    grant_browse(jira, {"type": "applicationRole", "parameter": ""})
    jira.issues["10001"]["fields"]["security"] = {"id": "10300", "name": "Staff only"}
    jira.issues["10001"]["fields"]["assignee"] = BOB
    jira.level_members["10300"] = [GROUP, DEVELOPERS, {"type": "assignee"}]
    jira.page_cap = 2  # the members come in two pages

    assert reader(jira).access("issue:10001") == Access(
        account_ids=("acc-bob", "acc-carol"), groups=("eng-team", "qa")
    )
    assert reader(jira).access("issue:10002") == Access(everyone=True)  # no level on this one


def test_a_security_level_within_group_grants_keeps_only_what_both_name(jira):
    grant_browse(jira, GROUP, {"type": "user", "parameter": "acc-dave"})
    jira.issues["10001"]["fields"]["security"] = {"id": "10300", "name": "Staff only"}
    jira.level_members["10300"] = [GROUP, {"type": "user", "parameter": "acc-erin"}]

    # acc-erin may be in eng-team or not: Jira's group members are not read, so she is left out.
    assert reader(jira).access("issue:10001") == Access(groups=("eng-team",))


@pytest.mark.parametrize(
    "denied",
    [
        "project/ENG/permissionscheme",
        "permissionscheme/",
        "project/ENG/role/",
        "issuesecurityschemes/",
        "issue/10001",
    ],
)
def test_access_fails_closed_when_jira_will_not_say(jira, denied):
    grant_browse(jira, GROUP, DEVELOPERS)
    jira.issues["10001"]["fields"]["security"] = {"id": "10300", "name": "Staff only"}
    jira.level_members["10300"] = [GROUP]
    jira.denied.add(denied)

    assert reader(jira).access("issue:10001") is None


def test_access_fails_closed_for_a_missing_scheme_or_garbage(jira):
    assert reader(jira).access("issue:10001") is None  # ENG has no scheme here: 404
    grant_browse(jira, GROUP)
    jira.fail_next.append((200, {"Content-Type": "application/json"}, b"<html>sign in</html>"))
    assert reader(jira).access("issue:10001") is None


def test_after_the_listing_access_asks_no_issue_and_sees_the_same(jira):
    grant_browse(jira, GROUP, {"type": "reporter"})
    jira.issues["10001"]["fields"]["reporter"] = ALICE
    jira.issues["10002"]["fields"]["security"] = {"id": "10300", "name": "Staff only"}
    jira.level_members["10300"] = [GROUP]
    keys = [f"issue:{10000 + n}" for n in range(1, 4)]
    expected = {key: reader(jira).access(key) for key in keys}
    assert expected["issue:10001"] == Access(account_ids=("acc-alice",), groups=("eng-team",))
    source = reader(jira)
    list_all(source)
    jira.requests.clear()
    assert {key: source.access(key) for key in keys} == expected
    assert not [path for path, _ in jira.requests if "/issue/" in path]  # fields from the listing


def test_access_reads_a_project_scheme_once_per_reader(jira):
    grant_browse(jira, GROUP, DEVELOPERS)
    source = reader(jira)

    answers = [source.access(f"issue:{10000 + n}") for n in range(1, 6)]

    assert answers == [Access(account_ids=("acc-carol",), groups=("eng-team", "qa"))] * 5
    paths = [path for path, _ in jira.requests]
    assert paths.count("/rest/api/3/project/ENG/permissionscheme") == 1
    assert paths.count("/rest/api/3/project/ENG/role/10002") == 1


def test_a_server_error_on_permissions_fails_the_run_rather_than_hiding_the_issue(jira):
    grant_browse(jira, GROUP)
    jira.fail_next = [(500, {}, b"oops")] * 5

    with pytest.raises(SourceFailed, match="jira answered 500"):
        reader(jira).access("issue:10001")


def test_429_is_waited_out_as_retry_after_says(jira):
    jira.fail_next.append((429, {"Retry-After": "7"}, b'{"message": "slow down"}'))

    assert len(reader(jira).list_items(None).items) == 2
    assert jira_sleeps(jira) == [7.0]


def test_a_401_refreshes_the_token_once_and_goes_on(jira):
    jira.tokens = {"at-2"}  # at-1 expired
    current, refreshes = ["at-1"], []

    def token(refresh: bool) -> str:
        if refresh:
            refreshes.append(True)
            current[0] = "at-2"
        return current[0]

    source = JiraReader(jira.url, "project = ENG", SourceHttp("jira", token), page_size=2)

    assert [i.key for i in list_all(source)][-1] == "issue:10005"
    assert refreshes == [True]


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ((401, {}, b'{"code":401}'), "jira refused the search \\(401\\)"),
        ((403, {}, b'{"errorMessages":[]}'), "jira refused the search \\(403\\)"),
        ((500, {}, b"Internal Server Error"), "jira answered 500 for the search"),
        ((200, {"Content-Type": "application/json"}, b"<html>"), "not JSON"),
        ((200, {}, b'{"issues": "many"}'), "a search without issues"),
        ((200, {}, b'{"issues": [{"key": "ENG-1"}]}'), "malformed issue"),
        ((200, {}, b'{"issues": [], "isLast": false}'), "without a next page"),
    ],
)
def test_a_failing_search_fails_with_what_jira_did_and_no_token(jira, failure, message):
    if failure[0] == 401:
        jira.tokens = set()  # refused before and after the refresh
    else:
        jira.fail_next.append(failure)

    with pytest.raises(SourceFailed, match=message) as failed:
        reader(jira).list_items(None)
    assert "at-1" not in str(failed.value)


def test_a_jql_that_jira_rejects_fails_with_jiras_message(jira):
    with pytest.raises(SourceFailed, match="Field 'assigne' does not exist") as failed:
        reader(jira, "assigne = currentUser()").list_items(None)
    assert failed.value.status == 502


def test_a_refused_or_failing_issue_fetch_is_a_source_failure(jira):
    jira.denied.add("issue/")
    with pytest.raises(SourceFailed, match="jira refused the issue \\(403\\)"):
        reader(jira).fetch("issue:10001")
    jira.denied.clear()
    jira.fail_next.append((502, {}, b"Bad gateway"))
    with pytest.raises(SourceFailed, match="jira answered 502 for the issue"):
        reader(jira).fetch("issue:10001")
