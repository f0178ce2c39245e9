"""An uploaded e-mail's headers as metadata and its attachments as documents of their own.

Done in the request, before anything is stored, so the e-mail and its attachments are stored in
one transaction or not at all. Only the e-mail's own attachments become documents (a message
attached to it becomes a document, but its attachments do not); an attachment in no format
postrag reads, or that fails the upload checks, is listed in the e-mail's metadata as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import AppError
from app.services import document_metadata, extraction, extraction_email, preflight
from app.services.extraction import UnreadableDocument


@dataclass(frozen=True)
class Attached:
    filename: str
    content_type: str
    data: bytes
    metadata: dict[str, Any]


def prepare(
    data: bytes, filename: str, metadata: dict[str, Any], max_pixels: int
) -> tuple[dict[str, Any], list[Attached]]:
    """(the e-mail's metadata, its attachments to store): headers under "email", the
    uploader's own metadata kept over them, both checked against the metadata limits. An
    e-mail the standard library cannot take apart (a header nested thousands deep makes its
    parser recurse out of stack) is a 422, like any unreadable upload."""
    try:
        message = extraction_email.parse(data)
        headers = extraction_email.headers(message)
        found = extraction_email.attachments(message)
    except AppError:
        raise
    except Exception as exc:  # noqa: BLE001 - RecursionError and the parser's own failures
        raise UnreadableDocument(f"cannot read {filename or 'the e-mail'}: {exc!r}") from exc
    attached: list[Attached] = []
    skipped: list[str] = []
    for attachment in found:
        name = attachment.filename
        try:
            content_type = extraction.detect_format(name, attachment.content_type, attachment.data)
            preflight.check(attachment.data, content_type, name, max_pixels)
        except AppError:
            skipped.append(name)
            continue
        own = {"email": {**headers, "attachment_of": filename}, **metadata}
        document_metadata.check(own)
        attached.append(Attached(name, content_type, attachment.data, own))
    summary = {**headers, "attachments": [a.filename for a in attached]}
    if skipped:
        summary["attachments_skipped"] = skipped
    combined = {"email": summary, **metadata}
    document_metadata.check(combined)
    return combined, attached
