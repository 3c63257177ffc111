"""`flask db-wait`, `flask db-status` and `flask db-baseline`: for deploy
scripts and readiness probes, and for squashing the migration history.

They reach every app's `flask` command (and the project's own console script)
through the ``flask.commands`` entry point group (pyproject.toml), as
Flask-Migrate's `flask db` does, and work on the app's Flask-SQLAlchemy and
Flask-Migrate extensions.
"""

import time
from typing import Any

import click
import flask_migrate
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.core import ParameterSource
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Connection, create_engine, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from . import baseline, connect_timeout, environment, history, running_release

DEFAULT_WAIT = 60.0


def _extension() -> Any:
    """What Flask-Migrate keeps on the app: its Migrate, and the db it migrates."""
    found = current_app.extensions.get("migrate")
    if found is None:
        raise click.ClickException(
            "The app has no Flask-Migrate extension: call Migrate(app, db) (or"
            " migrate.init_app(app, db)) in its factory."
        )
    return found


def _migrate() -> Migrate:
    migrate: Migrate = _extension().migrate
    return migrate


def _db() -> SQLAlchemy:
    db: SQLAlchemy = _extension().db
    return db


@click.command("db-wait")
@click.option(
    "--timeout",
    "given",
    envvar="DB_WAIT_TIMEOUT",
    metavar="SECONDS",
    help=f"Seconds to keep trying (default {DEFAULT_WAIT:g}; or DB_WAIT_TIMEOUT).",
)
@with_appcontext
def db_wait(given: str | None) -> None:
    """Wait until the database accepts connections."""
    if click.get_current_context().get_parameter_source("given") == (
        ParameterSource.ENVIRONMENT
    ):
        name, fix = "DB_WAIT_TIMEOUT", ""
    else:
        name, fix = "--timeout", "Give one, or leave the option out"
    timeout = environment.seconds(
        name, given, default=DEFAULT_WAIT, zero="one try", fix=fix
    )
    url = _db().engine.url
    deadline = time.monotonic() + timeout
    while True:
        # Each attempt may take only what is left of the timeout: a server that
        # accepts connections and never answers would otherwise hold it for the
        # driver's whole connect timeout.
        left = max(deadline - time.monotonic(), 0.5)
        engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args=connect_timeout.connect_args(url, left),
        )
        connect_timeout.install(engine)
        try:
            with engine.connect():
                return
        except SQLAlchemyError as exc:
            if time.monotonic() >= deadline:
                raise click.ClickException(
                    f"The database is still unreachable after {timeout:g}s:"
                    f" {_reason(exc)}"
                ) from None
        finally:
            engine.dispose()
        time.sleep(min(1.0, max(deadline - time.monotonic(), 0)))


@click.command("db-status")
@click.option(
    "--upgrade",
    is_flag=True,
    help="Upgrade a database that is behind; leave one at or ahead of the code.",
)
@with_appcontext
def db_status(upgrade: bool) -> None:
    """Exit 0 when the database is ready for this code: at the newest revision,
    or ahead of it (a readiness probe, and with --upgrade the deploy step).

    Ahead means a newer release has migrated the database: a rollback, or the
    old instances of a rolling deploy. They keep serving, which is safe because
    each migration stays compatible with the previous release
    (migrations/README, "Expand and contract").
    """
    db = _db()
    script = ScriptDirectory.from_config(_migrate().get_config())
    heads = set(script.get_heads())
    known = {revision.revision for revision in script.walk_revisions()}
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
            # Tables without a revision: made before (or without) migrations.
            unmanaged = set() if current else _tables(connection)
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"The database is unreachable: {_reason(exc)}"
        ) from None
    unknown = current - known
    if unknown:
        target = " ".join(sorted(heads)) or "base"
        # Only here can the schema lack what this code maps (at the newest
        # revision, `flask db check` in CI proved they match): a newer release
        # dropped a column this one still maps.
        try:
            missing = running_release.missing_columns(db)
        except SQLAlchemyError as exc:
            raise click.ClickException(
                f"The database is unreachable: {_reason(exc)}"
            ) from None
        if missing:
            raise click.ClickException(
                f"The database is at revision {_revisions(unknown)}, which this"
                " code does not have, and lacks columns this code maps:"
                f" {', '.join(missing)}. A newer release dropped them while"
                " this one still maps them: not ready (its queries on those"
                " tables fail). Deploy the newer release, or run `flask db"
                f" downgrade {target}` with its code (migrations/README,"
                ' "Dropping a column").'
            )
        skipped = " Skipping `flask db upgrade`." if upgrade else ""
        click.secho(
            f"Warning: {history.newer_database(unknown)} It counts as ready:"
            " each migration is written to work with the previous release's"
            f" code.{skipped} {history.way_back(target)}",
            fg="yellow",
            err=True,
        )
        return
    if unmanaged and heads:
        raise click.ClickException(
            f"The database has tables ({', '.join(sorted(unmanaged)[:5])}) but"
            " no migration revision: it was made without these migrations, and"
            " `flask db upgrade` would fail on the tables that exist. Adopt it"
            " once: `flask db stamp` the revision that matches it, then `flask"
            ' db check` (migrations/README, "Adopting an existing database").'
        )
    if current != heads:
        if upgrade:
            flask_migrate.upgrade()
            return
        raise click.ClickException(
            f"The database is at {_revisions(current)}, behind the code's"
            f" {_revisions(heads)}: not ready. Run `flask db upgrade`."
        )
    click.echo(f"The database is at the newest revision, {_revisions(heads)}.")


@click.command("db-baseline")
@click.argument("revision")
@click.option(
    "--drop-data-steps",
    is_flag=True,
    help="Squash revisions that change data; add what new databases need to"
    " the baseline by hand.",
)
@click.option(
    "--skip-database-check",
    is_flag=True,
    help="Do not check DATABASE_URL's database (you checked every deployed"
    " database with `flask db current`).",
)
@click.option(
    "--scratch-url",
    metavar="URL",
    help="An empty, throw-away database of the production engine to build the"
    " schema in (default: temporary SQLite files).",
)
@with_appcontext
def db_baseline(
    revision: str,
    drop_data_steps: bool,
    skip_database_check: bool,
    scratch_url: str | None,
) -> None:
    """Replace the migrations up to REVISION with one baseline revision that
    keeps REVISION's id (migrations/README, "Squashing the history").

    Every deployed database must be at REVISION or past it: the command checks
    DATABASE_URL's and refuses what would strand a database or lose work.
    """
    for line in baseline.squash(
        _db(),
        _migrate().get_config(),
        environment.revision("REVISION", revision),
        drop_data_steps=drop_data_steps,
        skip_database_check=skip_database_check,
        # Read as DATABASE_URL is: mysql:// means PyMySQL, bad URLs are explained.
        scratch_url=None
        if scratch_url is None
        else environment.database_url(scratch_url, "--scratch-url"),
    ):
        click.echo(line)


def _revisions(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions)) or "no revision"


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _reason(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
