"""The reader of a source's kind, speaking to it as the source's owner.

A Confluence or Jira source reads with its owner's Atlassian token from the connector vault,
refreshed (under the vault's per-user lock) when it expires or when the source answers 401; a
website is read without one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from app.providers.confluence import ConfluenceReader
from app.providers.jira import JiraReader
from app.providers.source_http import SourceHttp, TokenSource
from app.providers.source_items import SourceFailed, SourceReader
from app.providers.source_reach import Reach
from app.providers.web_source import WebReader
from app.repositories import Conn, Row
from app.services import connectors
from app.services.secrets import Keyring
from app.settings import Settings

# kind -> (config, http) -> reader, for the configs app/services/sources.py checked.
ReaderFactory = Callable[[Mapping[str, Any], SourceHttp], SourceReader]
READERS: dict[str, ReaderFactory] = {
    "jira": lambda config, http: JiraReader(config["base_url"], config["jql"], http),
    "confluence": lambda config, http: ConfluenceReader(config["base_url"], config["spaces"], http),
    "web": WebReader,
}


def token_source(conn: Conn, source: Row, settings: Settings) -> TokenSource | None:
    """The owner's access token for the source's connector, or None (a public website)."""
    if source["connector"] is None:
        return None
    keyring = Keyring.from_settings(settings) if settings.secret_key else None

    def token(force_refresh: bool) -> str:
        access, _ = connectors.access_token(
            conn, source["owner_id"], source["connector"], keyring, settings, force=force_refresh
        )
        return access

    return token


def open_reader(conn: Conn, source: Row, settings: Settings) -> tuple[SourceReader, SourceHttp]:
    """The source's reader and the HTTP client it uses (the caller closes it)."""
    factory = READERS.get(source["kind"])
    if factory is None:
        raise LookupError(f"no reader for sources of kind {source['kind']}")
    reach = Reach.of(settings.source_hosts)
    base_url = source["config"].get("base_url")
    refusal = reach.token_refusal(base_url) if source["connector"] and base_url else None
    if refusal is not None:  # allowed when the source was made, no longer
        raise SourceFailed(refusal)
    http = SourceHttp(source["kind"], token_source(conn, source, settings), reach=reach)
    return factory(source["config"], http), http
