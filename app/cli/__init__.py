"""The `postrag` command: the group and its commands, one module per area.

`server` (serve, worker), `database` (migrate, psql, pg-dump, pg-restore), `backup` (backup,
restore), `documents` (ingest), `transfer` (export, import), `users`, `keys`, `sources`, `mcp`
(the MCP tools over stdio), `evaluations` (`postrag eval`: sets, runs, comparisons); `common`
holds what they share. Each only parses arguments, calls a service and prints.
"""

from __future__ import annotations

import click

from app.cli.backup import backup_command, restore_command
from app.cli.database import migrate, pg_dump, pg_restore, psql
from app.cli.documents import ingest
from app.cli.evaluations import evaluations
from app.cli.keys import keys
from app.cli.mcp import mcp_command
from app.cli.server import serve, worker
from app.cli.sources import sources
from app.cli.transfer import export_command, import_command
from app.cli.users import users


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    commands=[
        serve,
        worker,
        psql,
        pg_dump,
        pg_restore,
        migrate,
        backup_command,
        restore_command,
        ingest,
        export_command,
        import_command,
        keys,
        users,
        sources,
        mcp_command,
        evaluations,
    ],
)
def main() -> None:
    """postrag: chat with your documents, on one PostgreSQL database.

    With DATABASE_URL unset, an embedded PostgreSQL with pgvector runs in POSTRAG_DATA_DIR.
    """
