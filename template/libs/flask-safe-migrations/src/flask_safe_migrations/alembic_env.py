"""What migrations/env.py runs: Alembic's environment for every `flask db ...`
command, wired from this library's modules.

Compared with the env.py that `flask db init` writes, it:

- takes a database lock, so that when several instances of the app start at
  once and all run `flask db upgrade`, each migration runs exactly once (on
  PostgreSQL an advisory lock held by each migration's transaction, safe
  through a transaction pooler such as PgBouncer; GET_LOCK on MySQL/MariaDB:
  locking.py);
- runs each migration in its own transaction, so on PostgreSQL and SQLite a
  failing migration leaves the database at the previous revision;
- gives each migration a lock timeout, so the app's queries never queue for
  long behind a migration that waits for a lock: it is rolled back, retried,
  and finally explained (timeouts.py);
- turns SQLite's foreign-key enforcement off while batch mode rebuilds tables,
  and checks the foreign keys before each migration commits (sqlite.py);
- reviews what autogenerate found (review.py, rules.py): marks each operation
  that destroys data, fails once a table has rows, blocks traffic or breaks
  the running release, in the script with its safe form and on the terminal,
  and suggests the rename that keeps the data; refuses a model module that
  nothing imports (model_modules.py);
- refuses, alike on every engine, what the rows in a table forbid (guards.py);
- writes revisions that run on every engine, whichever one autogenerate ran on
  (rendering.py), and compares server defaults by meaning (comparison.py);
- keeps the loggers configured before it ran, honours a connection handed in
  through config.attributes["connection"], and writes no revision when
  autogenerate finds no change;
- explains in one paragraph, not a traceback, a database it cannot reach
  (errors.py), a database ahead of the code and a downgrade from a merge point
  (history.py).
"""

import logging
from logging.config import fileConfig
from pathlib import Path
from types import ModuleType
from typing import Any

import click
from alembic.operations import MigrationScript
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from flask import current_app
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from . import (
    binds,
    comparison,
    enums,
    errors,
    guards,
    history,
    locking,
    model_modules,
    offline,
    project,
    rendering,
    review,
    settings,
    sqlite,
    timeouts,
)

log = logging.getLogger("alembic.env")


def run(context: ModuleType) -> None:
    """Run the `flask db` command that loaded env.py; ``context`` is
    ``alembic.context``, which Alembic sets up for that file."""
    _Environment(context).run()


class _Environment:
    def __init__(self, context: Any) -> None:
        self.context = context
        self.config = config = context.config
        if config.config_file_name and config.attributes.get("configure_logger", True):
            # disable_existing_loggers=False: the stock call silences every
            # logger that the app (or pytest) set up before the migration ran.
            fileConfig(config.config_file_name, disable_existing_loggers=False)
        guards.install()
        enums.install()  # after guards: its add_column wraps theirs
        self.migrate = current_app.extensions["migrate"]
        self.db = self.migrate.db
        # The project: the folder of the app's migrations folder, not of the
        # one Alembic runs, which `flask db-baseline` copies to a temporary one.
        migrations = Path(self.migrate.directory)
        self.project = project.load(migrations.resolve().parent)
        # What to compare: the package's migration_settings.py, the user's.
        self.settings = settings.load(self.project.settings_module)
        # The main database (None), then each bind a model uses (binds.py).
        self.databases = binds.databases(self.db)
        config.attributes["binds"] = self.databases[1:]  # for script.py.mako

    def run(self) -> None:
        if self.context.is_offline_mode():
            self.run_offline()
        else:
            self.run_online()

    def process_revision_directives(
        self,
        migration_context: MigrationContext,
        revision: Any,
        directives: list[MigrationScript],
    ) -> None:
        """Review what autogenerate found before the revision is written.

        No change: no revision. The review's findings are marked in the script
        with their safe form (script.py.mako lists them for acknowledgement) and
        on the terminal; a dropped-and-added column or table gets the rename
        that keeps its data.
        """
        config = self.config
        config.attributes["review_findings"] = []
        # A model module that nothing imports is a table autogenerate never sees.
        model_modules.refuse_unimported(self.project.models)
        script = directives[0]
        comparison.readable_defaults(script)  # `flask db check` prints these
        if not getattr(config.cmd_opts, "autogenerate", False):
            return
        if len(script.upgrade_ops_list) < len(self.databases):
            return  # called again once the other databases are compared
        if all(ops.is_empty() for ops in script.upgrade_ops_list):
            directives[:] = []
            log.info("No changes in the models; no revision written.")
            return
        rendering.arrange(script, self.db.metadata)
        enums.keep_added_values(script)  # a downgrade keeps an ENUM's new values
        found = review.review(script, self.project.production_engine)
        config.attributes["review_findings"] = found.acknowledgements()
        for line in found.report():
            click.secho(line, fg="yellow", err=True)
        rendering.check_names(script, migration_context)

    def run_offline(self) -> None:
        """`flask db upgrade --sql`: print the SQL instead of running it (for
        the main database; the binds' SQL is not printed)."""
        context, db = self.context, self.db
        offline.refuse_sqlite(db.engine.url)
        context.configure(
            url=db.engine.url,
            target_metadata=db.metadata,
            literal_binds=True,
            transaction_per_migration=True,  # one transaction each, as online
            **self.migrate.configure_args,
            **settings.alembic_options(self.settings, db.metadata),
        )
        with context.begin_transaction():
            context.run_migrations()

    def run_online(self) -> None:
        connection: Connection | None = self.config.attributes.get("connection")
        if connection is not None:  # with its bind, if not the main database
            self.run_migrations(connection, self.config.attributes.get("bind"))
            return
        # One database after the other: a failure in a bind leaves the
        # databases before it migrated; fix the revision and run it again.
        for bind in self.databases:
            engine = self.db.engines[bind]
            try:
                connection = engine.connect()
            except DBAPIError as exc:
                raise CommandError(
                    errors.describe_connection_error(exc, engine.url)
                ) from None
            with connection:
                try:
                    self.run_migrations(connection, bind)
                except DBAPIError as exc:
                    if not errors.is_permission_error(exc):
                        raise
                    raise CommandError(
                        errors.describe_permission_error(exc, engine.url)
                    ) from None

    def run_migrations(self, connection: Connection, bind: str | None = None) -> None:
        context = self.context
        if bind is not None:
            log.info("Database of the bind %r", bind)
        metadata = self.db.metadatas[bind]
        options: dict[str, Any] = {
            "transaction_per_migration": True,
            "process_revision_directives": self.process_revision_directives,
            # After each revision's step: SQLite's foreign keys checked, and the
            # PostgreSQL ENUM types its drops left without a column dropped.
            "on_version_apply": (sqlite.check_foreign_keys, enums.drop_unused_types),
            "render_item": rendering.render_item,
            **self.migrate.configure_args,  # what the app passed to Migrate() wins
            **settings.alembic_options(self.settings, metadata),  # and the settings
        }
        # Server defaults compared by meaning, in Alembic's autogenerate_plugins.
        options |= comparison.options(options)
        lock_name = self.project.lock_name
        with (
            sqlite.foreign_keys_off(connection),  # before any transaction begins
            locking.migration_lock(connection, lock_name),
            rendering.cycles_expected(),
        ):
            context.configure(
                connection=connection, target_metadata=metadata, **options
            )
            if bind is not None:  # again, to run each revision's upgrade_<bind>()
                options |= binds.options(bind, context.get_context())
                context.configure(
                    connection=connection, target_metadata=metadata, **options
                )
            migration_context = context.get_context()
            # PostgreSQL: each migration under a lock held by its own
            # transaction, safe through a transaction pooler (locking.py).
            run = locking.one_at_a_time(
                migration_context, lock_name, context.run_migrations
            )
            with (
                context.begin_transaction(),
                history.explained(context.script, migration_context),
            ):
                # Lock timeouts with retries: the app never queues for long
                # behind a migration that waits for a lock.
                timeouts.run_with_lock_retries(migration_context, run)
