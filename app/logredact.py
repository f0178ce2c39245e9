"""Keeps secrets out of the logs: a filter that masks tokens and credentials in log messages.

It masks Authorization values and bearer tokens, postrag tokens (keeping their public prefix),
JWTs, the values of access_token, refresh_token, id_token, client_secret, password and api_key
(query strings, JSON, Python reprs, conninfo) and the passwords in URLs. Tracebacks are left as
they are: they are what operators debug with.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from app.services.tokens import TOKEN_MARK

REDACTED = "[REDACTED]"

_QUOTED = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
_AUTHORIZATION = re.compile(
    r"(?i)(?<![a-z0-9])((?:proxy-)?authorization['\"]?\s*[:=]\s*)"
    rf"({_QUOTED}|[^'\"\r\n]+)"
)
# Eight characters at least: "Bearer <token>" in a help text is no token.
_BEARER = re.compile(r"(?i)(?<![a-z0-9])(bearer\s+)([^\s'\",;]{8,})")
_MASKED = re.escape(REDACTED)
_POSTRAG_TOKEN = re.compile(
    rf"(?<![A-Za-z0-9]){TOKEN_MARK}_(?!(?:[0-9a-f]{{12}}_)?{_MASKED})(?:([0-9a-f]{{12}})_)?[\w-]+"
)
_CREDENTIAL = re.compile(
    r"(?i)(?<![a-z0-9])((?:access_token|refresh_token|id_token|client_secret|password|passwd"
    r"|api_key)['\"]?\s*[:=]\s*)"
    rf"(?!{_MASKED})({_QUOTED}|[^\s'\"&,;}})\]]+)"
)
# A JWT anywhere (its header and claims are base64url JSON, so both start with `eyJ`).
_JWT = re.compile(r"(?<![\w-])eyJ[\w-]*\.eyJ[\w-]*\.[\w-]*")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]+@")


def _masked(value: str) -> str:
    """REDACTED, in the quotes `value` came in."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return f"{value[0]}{REDACTED}{value[0]}"
    return REDACTED


def _postrag_token(match: re.Match[str]) -> str:
    prefix = match.group(1)  # public (listed, stored in clear): it says which token leaked
    return f"{TOKEN_MARK}_{prefix}_{REDACTED}" if prefix else f"{TOKEN_MARK}_{REDACTED}"


def _bearer(match: re.Match[str]) -> str:
    if match.group(2).startswith(f"{TOKEN_MARK}_"):
        return match.group(0)  # a postrag token, masked already with its prefix kept
    return match.group(1) + REDACTED


def redact(text: str) -> str:
    """`text` with every token, credential value and URL password replaced by REDACTED."""
    # Whole values first (a header, a field), then tokens wherever else they are.
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + _masked(m.group(2)), text)
    text = _CREDENTIAL.sub(lambda m: m.group(1) + _masked(m.group(2)), text)
    text = _POSTRAG_TOKEN.sub(_postrag_token, text)
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(_bearer, text)
    return _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (its format and arguments) with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the handler's to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install() -> None:
    """Redact every log record as it is made, whichever logger sends it and whichever handler
    (added before or after this call) writes it; idempotent."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacting", False):
        return
    scrub = RedactingFilter()

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        scrub.filter(record)
        return record

    redacting_factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)
