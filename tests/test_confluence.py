"""The Confluence reader against an in-process Confluence speaking REST v2 and v1's restrictions:
listing across pages and spaces with resumable cursors, storage format to text, pages gone,
permissions, and the failures that must stop a sync."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.providers.confluence import ConfluenceOptions, ConfluenceReader
from app.providers.source_http import SourceHttp
from app.providers.source_items import Access, ItemGone, SourceFailed
from tests.fake_confluence import FakeConfluence, FakePage

STORAGE = """<h1>Overview</h1>
<p>Read the <ac:link><ri:page ri:content-title="Runbook" /></ac:link> first, then
<ac:link><ri:page ri:content-title="X" />
<ac:plain-text-link-body><![CDATA[the FAQ]]></ac:plain-text-link-body></ac:link>.</p>
<ac:structured-macro ac:name="info" ac:schema-version="1">
<ac:parameter ac:name="title">Careful</ac:parameter>
<ac:rich-text-body><p>Deploys freeze on Fridays.</p></ac:rich-text-body></ac:structured-macro>
<h2>Steps</h2>
<ol><li><p>Build</p></li><li>Ship<ul><li>to staging</li></ul></li></ol>
<ac:structured-macro ac:name="code" ac:schema-version="1">
<ac:parameter ac:name="language">bash</ac:parameter><ac:plain-text-body><![CDATA[make release
  && deploy --env prod]]></ac:plain-text-body></ac:structured-macro>
<table><tbody><tr><th>Env</th><th>Owner</th></tr>
<tr>
  <td><p>prod</p></td>
  <td>ops</td>
</tr></tbody></table>
<ac:image><ri:attachment ri:filename="diagram.png" /></ac:image><script>alert(1)</script>
<p><ac:structured-macro ac:name="toc" /></p>"""

EXPECTED = """# Deploying

# Overview

Read the Runbook first, then the FAQ.

Deploys freeze on Fridays.

## Steps

1. Build
2. Ship
  - to staging

```bash
make release
  && deploy --env prod
```

Env | Owner
prod | ops"""


@pytest.fixture(scope="module")
def confluence_server() -> Iterator[FakeConfluence]:
    with FakeConfluence() as server:
        yield server


@pytest.fixture
def confluence(confluence_server: FakeConfluence) -> FakeConfluence:
    """Two spaces: ENG (five pages) read by the engineers and the boss, OPS (three) by anyone."""
    server = confluence_server
    server.reset()
    server.add_space("ENG", readers=[("group", "g-eng"), ("user", "u-boss")])
    server.add_space("OPS", readers=[("user", "ANONYMOUS")])
    server.groups.update({"g-eng": "engineers", "g-ops": "operators", "g-sec": "security"})
    for i in range(5):
        server.add_page(FakePage(str(100 + i), f"Eng {i}", "ENG"))
    for i in range(3):
        server.add_page(FakePage(str(200 + i), f"Ops {i}", "OPS"))
    return server


def reader(
    server: FakeConfluence,
    spaces: tuple[str, ...] = ("ENG", "OPS"),
    slept: list[float] | None = None,
    tokens: list[str] | None = None,
    base_url: str | None = None,
) -> ConfluenceReader:
    issued = tokens if tokens is not None else ["token-1"]

    def token(force_refresh: bool) -> str:
        if force_refresh and len(issued) > 1:
            issued.pop(0)
        return issued[0]

    sleeps = slept if slept is not None else []
    http = SourceHttp("confluence", token, sleep=sleeps.append)
    options = ConfluenceOptions(page_limit=2)
    return ConfluenceReader(base_url or server.url, spaces, http, options)


def list_all(source: ConfluenceReader, cursor: str | None = None) -> list[str]:
    keys = []
    for _ in range(50):  # a listing that never ends fails rather than hangs
        listing = source.list_items(cursor)
        keys += [item.key for item in listing.items]
        if listing.cursor is None:
            return keys
        cursor = listing.cursor
    raise AssertionError(f"the listing did not end: {keys}")


def test_listing_follows_every_cursor_across_spaces(confluence):
    source = reader(confluence)
    first = source.list_items(None)
    assert [(i.key, i.version, i.title) for i in first.items] == [
        ("page:100", "1", "Eng 0"),
        ("page:101", "1", "Eng 1"),
    ]
    assert list_all(source) == [f"page:{100 + i}" for i in range(5)] + [
        f"page:{200 + i}" for i in range(3)
    ]
    # The first call, then ENG's three pages of two and OPS's two; the spaces resolved once.
    lists = [r for r in confluence.requests if "/pages?" in r]
    assert len(lists) == 1 + 3 + 2
    assert sum(1 for r in confluence.requests if r.startswith("/wiki/api/v2/spaces?")) == 1


def test_listing_skips_pages_not_current(confluence):
    confluence.pages["101"].status = "archived"
    assert "page:101" not in list_all(reader(confluence))


def test_a_listing_resumed_from_its_cursor_gives_the_rest_once(confluence):
    source = reader(confluence)
    seen, cursor = [], None
    for _ in range(3):  # ENG's three pages of results, then the crash
        listing = source.list_items(cursor)
        seen += [item.key for item in listing.items]
        cursor = listing.cursor
    rest = list_all(reader(confluence), cursor)  # a new reader, as after a restart
    assert seen + rest == [f"page:{100 + i}" for i in range(5)] + [
        f"page:{200 + i}" for i in range(3)
    ]


def test_a_listing_through_the_api_gateway_url_follows_its_cursors(confluence):
    """`_links.next` is relative to the site (`/wiki/api/v2/...`), not to the gateway's
    `/ex/confluence/<cloud id>`: only its cursor is followed."""
    source = reader(confluence, base_url=f"{confluence.url}/ex/confluence/cloud-1")
    assert len(list_all(source)) == 8
    assert source.fetch("page:200").title == "Ops 0"
    assert all(r.startswith("/ex/confluence/cloud-1/wiki/") for r in confluence.requests)


def test_a_cursor_naming_a_space_no_longer_configured_starts_over(confluence):
    listing = reader(confluence, spaces=("OPS",)).list_items(None)
    assert listing.cursor is not None
    assert list_all(reader(confluence, spaces=("ENG",)), listing.cursor) == [
        f"page:{100 + i}" for i in range(5)
    ]


def test_a_cursor_of_another_listing_is_refused(confluence):
    with pytest.raises(ValueError):
        reader(confluence).list_items("garbage")


def test_a_space_missing_fails_the_listing_rather_than_empty_it(confluence):
    with pytest.raises(SourceFailed, match="no space NOPE"):
        reader(confluence, spaces=("ENG", "NOPE")).list_items(None)


def test_fetch_converts_storage_format_to_text_with_metadata(confluence):
    page = FakePage("300", "Deploying", "ENG", body=STORAGE, version=7, parent_id="100")
    page.labels = ["howto", "ops"]
    confluence.add_page(page)
    item = reader(confluence).fetch("page:300")
    assert item.text == EXPECTED
    assert (item.key, item.version, item.title) == ("page:300", "7", "Deploying")
    assert item.url == f"{confluence.url}/wiki/spaces/ENG/pages/300/Deploying"
    assert item.metadata == {
        "space": "ENG",
        "page_id": "300",
        "version": 7,
        "author_id": "editor-7",
        "created": "2026-01-02T03:04:05.000Z",
        "updated": "2026-02-03T04:05:06.000Z",
        "labels": ["howto", "ops"],
        "parent_id": "100",
    }


def test_labels_refused_leave_the_page_without_labels(confluence):
    confluence.fail_next.append(("/labels", 403, {}, b"{}"))
    assert reader(confluence).fetch("page:100").metadata["labels"] == []


@pytest.mark.parametrize("change", ["deleted", "archived", "trashed", "other space"])
def test_a_page_gone_or_out_of_scope_is_item_gone(confluence, change):
    if change == "deleted":
        del confluence.pages["100"]
    elif change == "other space":
        confluence.add_space("HR")
        confluence.pages["100"].space_key = "HR"
    else:
        confluence.pages["100"].status = change
    with pytest.raises(ItemGone):
        reader(confluence).fetch("page:100")


def test_access_without_restrictions_is_the_spaces_readers(confluence):
    source = reader(confluence)
    assert source.access("page:100") == Access(account_ids=("u-boss",), groups=("engineers",))
    assert source.access("page:200") == Access(everyone=True)


def test_access_with_a_page_restriction_keeps_who_passes_the_space_too(confluence):
    page = confluence.pages["101"]
    page.read_users = ["u-alice", "u-boss", "u-outsider"]
    page.read_groups = [("g-eng", "engineers"), ("g-ops", "operators")]
    confluence.members.update({"u-alice": ["g-eng"], "u-outsider": ["g-ops"]})
    # alice reads ENG through engineers; boss directly; the outsider's group cannot read ENG,
    # and neither can the operators.
    assert reader(confluence).access("page:101") == Access(
        account_ids=("u-alice", "u-boss"), groups=("engineers",)
    )


def test_access_narrowed_by_an_ancestors_restriction(confluence):
    confluence.pages["103"].parent_id = "102"
    confluence.pages["104"].parent_id = "103"
    confluence.pages["102"].read_users = ["u-alice"]
    confluence.pages["102"].read_groups = [("g-sec", "security")]
    leaf = confluence.pages["104"]
    leaf.read_users = ["u-alice", "u-boss"]
    leaf.read_groups = [("g-eng", "engineers")]
    confluence.members.update({"u-alice": ["g-eng"], "u-boss": []})
    # The grandparent's restriction names neither the boss nor the engineers: alice alone
    # passes the space (through engineers), the grandparent and the leaf (by name).
    assert reader(confluence).access("page:104") == Access(account_ids=("u-alice",))


def test_after_the_listing_access_needs_no_page_or_ancestors_request(confluence):
    confluence.pages["103"].parent_id = "102"
    confluence.pages["104"].parent_id = "103"
    confluence.pages["102"].read_users = ["u-alice"]
    confluence.members.update({"u-alice": ["g-eng"]})
    expected = {k: reader(confluence).access(k) for k in ("page:104", "page:101")}
    assert expected["page:104"] == Access(account_ids=("u-alice",))
    source = reader(confluence)
    list_all(source)
    confluence.requests.clear()
    assert {k: source.access(k) for k in expected} == expected  # the same readers
    asked = [r for r in confluence.requests if "/api/v2/pages/" in r]
    assert asked == [], asked  # space and ancestors came from the listing
    # A parent the listing did not show (here: archived) is asked for: its chain is not known.
    confluence.pages["102"].status = "archived"
    source = reader(confluence)
    list_all(source)
    confluence.requests.clear()
    assert source.access("page:104") == expected["page:104"]
    assert any(r.split("?")[0].endswith("/pages/104/ancestors") for r in confluence.requests)


def test_what_pages_share_is_read_once_per_reader(confluence):
    for child in ("103", "104"):
        confluence.pages[child].parent_id = "102"
    confluence.pages["102"].read_groups = [("g-eng", "engineers")]
    source = reader(confluence)
    assert source.access("page:103") == source.access("page:104")
    assert source.access("page:103") == Access(groups=("engineers",))
    assert sum("/content/102/restriction" in r for r in confluence.requests) == 1
    assert (
        sum("/spaces/1000/permissions" in r and "cursor" not in r for r in confluence.requests) == 1
    )


@pytest.mark.parametrize("status", [401, 403, 404, 501])
@pytest.mark.parametrize(
    "endpoint", ["/restriction/", "/permissions", "/ancestors", "/memberof", "/group/by-id"]
)
def test_access_that_cannot_be_read_is_none(confluence, status, endpoint):
    if endpoint == "/memberof":  # asked only for a user named in a restriction
        confluence.pages["100"].read_users = ["u-alice"]
        confluence.members["u-alice"] = ["g-eng"]
    confluence.fail_next += [(endpoint, status, {}, b"{}")] * 2  # twice: a 401 is retried
    assert reader(confluence).access("page:100") is None
    assert any(endpoint in request for request in confluence.requests)


def test_a_429_is_waited_out_as_retry_after_says(confluence):
    slept: list[float] = []
    confluence.fail_next.append(("/pages", 429, {"Retry-After": "3"}, b"{}"))
    assert reader(confluence, slept=slept).list_items(None).items
    assert slept == [3.0]


def test_a_401_refreshes_the_token_once(confluence):
    confluence.tokens = {"token-2"}
    item = reader(confluence, tokens=["token-1", "token-2"]).fetch("page:100")
    assert item.title == "Eng 0"


def test_content_refused_after_the_refresh_fails_without_the_token(confluence):
    confluence.tokens = {"token-3"}
    with pytest.raises(SourceFailed, match="confluence refused") as failure:
        reader(confluence, tokens=["token-1", "token-2"]).fetch("page:100")
    assert "token-" not in str(failure.value)


@pytest.mark.parametrize(
    ("call", "status", "raw", "message"),
    [
        ("list", 500, b'{"message": "oops"}', "answered 500"),
        ("list", 200, b"<html>maintenance</html>", "not JSON"),
        ("list", 200, b'{"results": [{"title": "no id"}]}', "unexpected shape"),
        ("fetch", 502, b"", "answered 502"),
        ("fetch", 200, b'{"id": "100"}', "unexpected shape"),
    ],
)
def test_content_failures_and_garbage_are_source_failed(confluence, call, status, raw, message):
    source = reader(confluence)
    source.list_items(None)  # the spaces resolved
    confluence.fail_next.append(("/pages", status, {}, raw))
    with pytest.raises(SourceFailed, match=message):
        if call == "list":
            source.list_items(None)
        else:
            source.fetch("page:100")
