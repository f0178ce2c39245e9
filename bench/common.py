"""What the bench scripts share: a fresh database on a server, and offline settings over it."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from app.settings import Settings


def fresh_database(server_url: str, prefix: str = "postrag_bench") -> str:
    """A new empty database on the server (`prefix_<random>`), as a URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def offline_settings(server_url: str, data_dir: Path, prefix: str) -> Settings:
    """The environment's settings on a fresh database: no worker threads (the script drains
    jobs itself), extractive answers, no rate limit."""
    return replace(
        Settings.from_env({**os.environ, "POSTRAG_DATA_DIR": str(data_dir)}),
        database_url=fresh_database(server_url, prefix),
        workers=0,
        llm="none",
        rate_limit_per_minute=0,
    )
