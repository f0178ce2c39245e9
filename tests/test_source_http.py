"""SourceHttp: Retry-After waited out, one refresh after a 401, failures as SourceFailed."""

from __future__ import annotations

from typing import Any

import pytest

from app.providers.source_http import SourceHttp, retry_after_s
from app.providers.source_items import SourceFailed
from app.providers.source_reach import Reach
from tests.fakes import LoopbackServer, QuietHandler, send_raw
from tests.helpers import closed_port_url

JSON = {"Content-Type": "application/json"}


class ScriptedServer(LoopbackServer):
    """Answers GETs with `answers` in turn: (status, headers, body); records Authorization."""

    def __init__(self, *answers: tuple[int, dict[str, str], bytes]) -> None:
        self.answers = list(answers)
        self.authorizations: list[str | None] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.authorizations.append(self.headers.get("Authorization"))
                send_raw(self, *server.answers.pop(0))

        self.url = self._listen(Handler) + "/wiki/api/v2/pages"


class Tokens:
    """A token source handing out t0, t1, ... and recording each call's force_refresh."""

    def __init__(self) -> None:
        self.calls: list[bool] = []

    def __call__(self, force_refresh: bool) -> str:
        self.calls.append(force_refresh)
        return f"t{sum(self.calls)}"


def client(**kwargs: Any) -> tuple[SourceHttp, list[float]]:
    slept: list[float] = []
    return SourceHttp("Confluence", sleep=slept.append, **kwargs), slept


def test_a_429_is_retried_after_its_retry_after_seconds():
    with ScriptedServer((429, {"Retry-After": "7"}, b""), (200, JSON, b'{"ok": 1}')) as server:
        http, slept = client()
        assert http.get_json(server.url) == {"ok": 1}
    assert slept == [7.0] and len(server.authorizations) == 2


def test_a_wait_longer_than_allowed_fails_the_source():
    with ScriptedServer((503, {"Retry-After": "3600"}, b"")) as server:
        http, slept = client(max_wait_s=60)
        with pytest.raises(SourceFailed, match="asks to wait 3600 s"):
            http.get(server.url)
    assert slept == []


def test_a_401_refreshes_the_token_once_then_succeeds():
    tokens = Tokens()
    with ScriptedServer((401, JSON, b"{}"), (200, JSON, b"[1, 2]")) as server:
        http, _ = client(token=tokens)
        assert http.get_json(server.url) == [1, 2]
    assert tokens.calls == [False, True]
    assert server.authorizations == ["Bearer t0", "Bearer t1"]


def test_a_second_401_is_the_callers_to_read():
    tokens = Tokens()
    answers = [(401, JSON, b"{}")] * 4
    with ScriptedServer(*answers) as server:
        http, _ = client(token=tokens)
        assert http.get(server.url).status_code == 401
        assert tokens.calls == [False, True]
        with pytest.raises(SourceFailed, match="Confluence answered 401 for /wiki/api/v2/pages"):
            http.get_json(server.url, params={"title": "secret plans"})
    assert tokens.calls == [False, True, False, True]


def test_a_body_that_is_not_json_fails_the_source():
    with ScriptedServer((200, {"Content-Type": "text/html"}, b"<html>login</html>")) as server:
        http, _ = client()
        with pytest.raises(SourceFailed, match="not JSON"):
            http.get_json(server.url)


def test_a_refused_connection_fails_the_source_without_the_token():
    http, _ = client(token=lambda force: "tok-very-secret")
    with pytest.raises(SourceFailed) as failed:
        http.get(closed_port_url() + "/rest/api/3/search")
    assert "cannot be reached" in str(failed.value) and "tok-very-secret" not in str(failed.value)
    assert failed.value.status == 502


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_s("12", default=2.0) == 12.0
    assert retry_after_s(None, default=2.0) == 2.0
    assert retry_after_s("soon", default=3.0) == 3.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", default=2.0) == 0.0  # in the past


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.9", "169.254.169.254", "::1", "::ffff:127.0.0.1"],
)
def test_non_public_addresses_are_not_reached_unless_listed(address):
    assert not Reach().address_allowed(address)
    assert Reach.of(["0.0.0.0/0", "::/0"]).address_allowed(address)
    assert Reach().address_allowed("8.8.8.8") and Reach().address_allowed("2606:4700::1111")


def test_urls_naming_this_machine_or_private_addresses_are_refused_before_resolving():
    reach = Reach.of(["wiki.internal", "10.0.0.0/8"])
    assert "this machine" in (reach.literal_refusal("http://localhost:5432/") or "")
    assert "non-public" in (reach.literal_refusal("http://169.254.169.254/latest/") or "")
    assert "non-public" in (reach.literal_refusal("http://[::1]:8000/") or "")
    assert reach.literal_refusal("http://10.0.0.5/") is None  # listed network
    assert reach.literal_refusal("https://wiki.internal/") is None  # listed name
    assert reach.literal_refusal("https://docs.example.org/") is None  # a name: read time


def test_atlassian_tokens_go_to_atlassian_cloud_and_listed_hosts_only():
    reach = Reach.of(["confluence.corp.example", "10.0.0.0/8"])
    assert reach.token_refusal("https://api.atlassian.com/ex/confluence/abc") is None
    assert reach.token_refusal("https://acme.atlassian.net") is None
    assert reach.token_refusal("https://confluence.corp.example") is None
    assert reach.token_refusal("http://10.0.0.7:8090") is None
    for elsewhere in ("https://atlassian.net.evil.example", "https://evil.example/atlassian.net"):
        assert "not Atlassian's cloud" in (reach.token_refusal(elsewhere) or "")


def test_a_non_public_address_is_refused_before_anything_is_sent():
    with ScriptedServer((200, JSON, b"{}")) as server:
        for url in (server.url, server.url.replace("127.0.0.1", "0x7f000001")):  # hex: a name
            http, _ = client(reach=Reach(), token=Tokens())
            with pytest.raises(SourceFailed, match="may not reach .*non-public address"):
                http.get_json(url)
            http.close()
        assert server.authorizations == []  # not a request, not a token
        allowed, _ = client(reach=Reach.of(["127.0.0.1"]))
        assert allowed.get_json(server.url) == {}
        allowed.close()


def test_the_address_reached_is_checked_again_before_the_answer_is_read(monkeypatch):
    # DNS rebinding: the name resolved to a public address when it was checked, and to this
    # machine when the connection was made.
    monkeypatch.setattr(Reach, "refusal", lambda self, url: None)
    with ScriptedServer((200, JSON, b'{"secret": 1}'), (200, {}, b"secret")) as server:
        http, _ = client(reach=Reach())
        with pytest.raises(SourceFailed, match="answered from a non-public address"):
            http.get_json(server.url)
        with pytest.raises(SourceFailed, match="answered from a non-public address"):
            http.get_capped(server.url, 1000)
        http.close()
