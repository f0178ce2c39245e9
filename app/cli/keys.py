"""`postrag keys`: a new POSTRAG_SECRET_KEY, and re-encrypting connector tokens with it."""

from __future__ import annotations

import click

from app.cli.common import with_conn


@click.group()
def keys() -> None:
    """Manage POSTRAG_SECRET_KEY, the key that encrypts connector tokens."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random secret for POSTRAG_SECRET_KEY."""
    from app.services.secrets import generate_secret

    click.echo(generate_secret())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every connector token with POSTRAG_SECRET_KEY.

    Set POSTRAG_SECRET_KEY to the new secret and POSTRAG_OLD_SECRET_KEYS to the old one(s)
    (comma-separated) first; once this has run, the old ones can go.
    """
    from app.services import connectors
    from app.services.secrets import Keyring

    count = with_conn(
        lambda conn, settings: connectors.rotate(conn, Keyring.from_settings(settings))
    )
    click.echo(f"re-encrypted {count} connector token row(s) with the current key", err=True)
