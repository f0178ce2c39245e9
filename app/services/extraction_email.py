"""E-mail (.eml) to blocks, metadata and attachments, with the standard library's parser.

The subject is the heading; From, To, Cc and Date a block under it and the document's metadata;
the body is the plain text part, else the HTML one through the HTML extractor. Attachments are
not part of the body: at upload, those in a supported format become documents of their own
(app/services/documents.py), one level deep only. A message is refused at upload when it has
more than MAX_EMAIL_PARTS parts, MAX_EMAIL_ATTACHMENTS attachments, or messages nested deeper
than MAX_EMAIL_NESTING.
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from typing import Any

from app.services import extraction_html
from app.services.extraction import Block, UnreadableDocument, decode_text, paragraphs

MAX_EMAIL_PARTS = 200
MAX_EMAIL_ATTACHMENTS = 20
MAX_EMAIL_NESTING = 2  # a message attached to a message attached to the upload
HEADER_CHARS = 500  # per header in the metadata
_HEADERS = ("from", "to", "cc", "subject", "date")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


def parse(data: bytes) -> EmailMessage:
    """The message, its structure checked against the limits."""
    try:
        message = email.message_from_bytes(data, policy=policy.default)
    except RecursionError:
        raise UnreadableDocument(
            f"the e-mail is nested too deeply; the limit is {MAX_EMAIL_NESTING} levels"
        ) from None
    assert isinstance(message, EmailMessage)
    parts = attachments = 0
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        parts += 1
        nested = part.get_content_type() == "message/rfc822"
        attachments += part.get_filename() is not None or nested
        if parts > MAX_EMAIL_PARTS or attachments > MAX_EMAIL_ATTACHMENTS:
            raise UnreadableDocument(
                f"the e-mail has more than {MAX_EMAIL_PARTS} parts or {MAX_EMAIL_ATTACHMENTS}"
                " attachments; forward them in smaller messages"
            )
        if nested and depth + 1 > MAX_EMAIL_NESTING:
            raise UnreadableDocument(
                f"the e-mail is nested too deeply; the limit is {MAX_EMAIL_NESTING} levels"
            )
        if part.is_multipart():
            children = part.get_payload()
            assert isinstance(children, list)
            stack.extend(
                (child, depth + nested) for child in children if isinstance(child, Message)
            )
    return message


def headers(message: EmailMessage) -> dict[str, Any]:
    """From, To, Cc, Subject and Date (ISO 8601 when it parses), each at most HEADER_CHARS."""
    found: dict[str, Any] = {}
    for name in _HEADERS:
        try:
            value = message[name]
            when = getattr(value, "datetime", None)
            text = when.isoformat() if when is not None else " ".join(str(value).split())
        except (ValueError, IndexError, RecursionError):  # too broken to parse: left out
            continue
        if value is None:
            continue
        if text:
            found[name] = text[:HEADER_CHARS]
    return found


def blocks(data: bytes) -> list[Block]:
    message = parse(data)
    found = headers(message)
    subject = found.pop("subject", "")
    path = (subject,) if subject else ()
    lines = [f"{name.title()}: {value}" for name, value in found.items()]
    result = [Block(subject, path, None)] if subject else []
    result.append(Block("\n".join(lines), path, None))
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return result
    raw = body.get_payload(decode=True)
    content = raw if isinstance(raw, bytes) else b""
    if body.get_content_type() == "text/html":
        html = extraction_html.whole_blocks(content)
        return result + [Block(b.text, path + b.heading_path, None) for b in html]
    charset = body.get_content_charset() or "utf-8"
    try:
        text = content.decode(charset)
    except (LookupError, UnicodeDecodeError):
        text = decode_text(content)
    return result + paragraphs(text.replace("\r\n", "\n"), path)


def attachments(message: EmailMessage) -> list[Attachment]:
    """The message's own attachments (not those of messages attached to it)."""
    found = []
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            assert isinstance(inner, list) and isinstance(inner[0], EmailMessage)
            data = inner[0].as_bytes(policy=policy.default)
            subject = " ".join(str(inner[0]["subject"] or "").split())[:100]
            name = part.get_filename() or f"{subject or 'attached message'}.eml"
            found.append(Attachment(name, "message/rfc822", data))
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            name = part.get_filename() or "attachment"
            found.append(Attachment(name, part.get_content_type(), payload))
    return found
