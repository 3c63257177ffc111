"""The app's own `flask` commands, for deploy scripts and readiness probes."""

import time

import click
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db, migrate


@click.command("db-wait")
@click.option(
    "--timeout", default=60.0, show_default=True, help="Seconds to keep trying."
)
@with_appcontext
def db_wait(timeout: float) -> None:
    """Wait until the database accepts connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with db.engine.connect():
                return
        except SQLAlchemyError as exc:
            if time.monotonic() >= deadline:
                raise click.ClickException(
                    f"The database is still unreachable after {timeout:g}s:"
                    f" {_reason(exc)}"
                ) from None
        time.sleep(1)


@click.command("db-status")
@with_appcontext
def db_status() -> None:
    """Exit 0 when the database is at the newest revision (a readiness probe)."""
    heads = set(ScriptDirectory.from_config(migrate.get_config()).get_heads())
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"The database is unreachable: {_reason(exc)}"
        ) from None
    if current != heads:
        raise click.ClickException(
            f"The database is at {_revisions(current)}, the code expects"
            f" {_revisions(heads)}. Run `flask db upgrade`."
        )
    click.echo(f"The database is at the newest revision, {_revisions(heads)}.")


def _revisions(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions)) or "no revision"


def _reason(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
