"""Tokens and credentials never reach the logs: the redacting filter, alone and installed."""

from __future__ import annotations

import logging

import pytest

from app.logredact import REDACTED, RedactingFilter, install, redact
from tests.helpers import bearer, http_get, live_server

TOKEN = "prg_0123456789ab_Zm9vYmFyYmF6cXV4-_quux0123456789abcdefghijklm"
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl-_x"


def _public_and_secret(token: str) -> tuple[str, str]:
    """prg_<prefix> and the secret after it (which may hold underscores itself)."""
    mark, prefix, secret = token.split("_", 2)
    return f"{mark}_{prefix}", secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {TOKEN}", f"Authorization: {REDACTED}"),
        ("authorization: Basic dXNlcjpwYXNz", f"authorization: {REDACTED}"),
        (
            "{'Authorization': 'Token abc', 'Accept': '*/*'}",
            f"{{'Authorization': '{REDACTED}', 'Accept': '*/*'}}",
        ),
        ("HTTP_AUTHORIZATION=Bearer abc", f"HTTP_AUTHORIZATION={REDACTED}"),
        ("upstream got Bearer abc.def-ghi back", f"upstream got Bearer {REDACTED} back"),
        (f"Bearer {TOKEN}", f"Bearer prg_0123456789ab_{REDACTED}"),
        (f"GET /api/v1/{TOKEN} HTTP/1.1", f"GET /api/v1/prg_0123456789ab_{REDACTED} HTTP/1.1"),
        ("bogus prg_abc_def-ghi", f"bogus prg_{REDACTED}"),
        (f"Authorization: Bearer {JWT}", f"Authorization: {REDACTED}"),
        (f"upstream got bearer {JWT}, retrying", f"upstream got bearer {REDACTED}, retrying"),
        (f"GET /cb?session={JWT}&x=1 HTTP/1.1", f"GET /cb?session={REDACTED}&x=1 HTTP/1.1"),
        (f'{{"token": "{JWT}"}}', f'{{"token": "{REDACTED}"}}'),
        (
            "GET /cb?code=1&access_token=abc.def&state=2",
            f"GET /cb?code=1&access_token={REDACTED}&state=2",
        ),
        (
            '{"refresh_token": "two words", "expires_in": 3600}',
            f'{{"refresh_token": "{REDACTED}", "expires_in": 3600}}',
        ),
        (
            "client_secret=shh password='two words'",
            f"client_secret={REDACTED} password='{REDACTED}'",
        ),
        ("host=db password=pw dbname=x", f"host=db password={REDACTED} dbname=x"),
        ("postgresql://app:hunter2@db:5432/app", f"postgresql://app:{REDACTED}@db:5432/app"),
        # Ordinary text stays as it is.
        ("the password must be 12 characters", "the password must be 12 characters"),
        ("the token expired", "the token expired"),
        ("expected 'Bearer <token>'", "expected 'Bearer <token>'"),
        ("GET /api/v1/documents?limit=5 HTTP/1.1", "GET /api/v1/documents?limit=5 HTTP/1.1"),
    ],
)
def test_redact_masks_tokens_and_credentials(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected


def _record(msg, *args) -> logging.LogRecord:
    return logging.LogRecord("werkzeug", logging.INFO, __file__, 1, msg, args or None, None)


def test_the_filter_rewrites_message_and_arguments():
    redacting = RedactingFilter()
    header = _record("%s %s", "Authorization:", f"Bearer {TOKEN}")
    assert redacting.filter(header)
    assert header.getMessage() == f"Authorization: {REDACTED}"
    # gunicorn's access log formats a dict of request atoms.
    atoms = {"h": "::1", "r": f"GET /?access_token={TOKEN}", "s": 200}
    access = _record('%(h)s "%(r)s" %(s)s', atoms)
    assert redacting.filter(access)
    assert access.getMessage() == f'::1 "GET /?access_token={REDACTED}" 200'
    harmless = _record("%d documents", 3)
    assert redacting.filter(harmless) and (harmless.msg, harmless.args) == ("%d documents", (3,))
    broken = _record("%d documents", "three")  # the handler reports it, as without the filter
    assert redacting.filter(broken) and broken.args == ("three",)


def test_install_is_idempotent_and_covers_loggers_and_handlers_made_later():
    install()
    factory = logging.getLogRecordFactory()
    install()
    assert logging.getLogRecordFactory() is factory
    late = logging.getLogger("postrag.test.late")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    late.addHandler(handler)
    try:
        late.warning("Authorization: Bearer %s", "abcdefgh12345678")
    finally:
        late.removeHandler(handler)
    assert seen == [f"Authorization: {REDACTED}"]


def _messages(records) -> str:
    return "\n".join(record.getMessage() for record in records)


def test_the_first_admins_token_is_not_logged(caplog, admin_token):
    public, secret = _public_and_secret(admin_token)
    logged = _messages(caplog.get_records("setup"))
    assert "shown once" in logged and "admin-token" in logged
    assert secret not in logged and public not in logged  # only the file holds it


def test_requests_with_valid_and_bogus_tokens_log_no_token(app, client, admin_token, caplog):
    log = logging.getLogger("tests.careless")

    def careless():  # a handler that logs what it should not
        from flask import request

        log.warning("headers: %s", dict(request.headers))
        return {}

    app.add_url_rule("/careless", "careless", careless)
    bogus = "prg_0123456789ab_bogus-secret-that-is-long-enough-to-look-real"
    with caplog.at_level(logging.DEBUG):
        for token in (admin_token, bogus, "not-even-a-postrag-token"):
            assert client.get("/api/v1/me", headers=bearer(token)).status_code in (200, 401)
            assert client.get("/careless", headers=bearer(token)).status_code == 200
            # A token in a URL is logged with the path (the access log): postrag tokens are
            # recognised and masked there too; nothing can recognise an arbitrary word.
            if token.startswith("prg_"):
                missing = client.get(f"/api/v1/{token}", headers=bearer(token))
                assert missing.status_code in (401, 404)
    logged = _messages(caplog.records)
    for secret in (_public_and_secret(admin_token)[1], bogus[17:], "not-even-a-postrag-token"):
        assert secret not in logged
    assert logged.count(f"'Authorization': '{REDACTED}'") == 3


def test_the_servers_request_log_has_no_tokens(app, admin_token, caplog):
    public, secret = _public_and_secret(admin_token)
    with caplog.at_level(logging.INFO), live_server(app) as url:
        assert (
            http_get(f"{url}/api/v1/me?access_token={admin_token}", bearer(admin_token))[0] == 200
        )
        assert http_get(f"{url}/api/v1/{admin_token}", bearer(admin_token))[0] == 404
    request_lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert len(request_lines) == 2, request_lines
    assert f"access_token={REDACTED}" in request_lines[0]
    assert f"{public}_{REDACTED}" in request_lines[1]
    assert not any(secret in line for line in request_lines)
