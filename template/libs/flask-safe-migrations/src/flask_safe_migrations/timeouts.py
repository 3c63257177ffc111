"""A migration that waits for a lock gives up before the app stalls behind it.

An ALTER TABLE needs an exclusive lock on its table. While it waits for one
(behind a long transaction, an open psql session, a backup), every app query
on that table queues behind the ALTER: the app stalls for as long as the
migration waits, which by default is for ever. So, once the migration lock is
held (its own wait must not time out), each migration's statements get:

- a lock timeout: the longest the migration waits for any lock, hence the
  longest an app query queues behind a waiting migration. When it expires, the
  migration's transaction is rolled back (the queue moves on), and the
  migration is tried again after a pause, a few times; then the command fails
  with a message that names the session holding the lock.
- on PostgreSQL, a statement timeout: a statement that runs for longer is
  cancelled and its migration rolled back.

On PostgreSQL both are set in each migration's own transaction (SET LOCAL),
never for the session: behind a transaction pooler (PgBouncer) a session
setting stays on the pooled server connection, for the app's queries to meet.

The defaults, and why:

- MIGRATION_LOCK_TIMEOUT=5 (seconds). An app query waits at most 5 s behind a
  blocked migration: a slow request, not an outage, and well inside the usual
  30 s request timeouts (gunicorn's default). On a busy table the app's own
  transactions last milliseconds, so 5 s is plenty for the migration to get its
  lock unless something holds it for long, and that is what should fail.
- MIGRATION_LOCK_RETRIES=3, after pauses of 2, 4 and 8 s. A lock held for a few
  seconds (a report, a batch job) is outlasted; a blocked `flask db upgrade`
  gives up after 4 x 5 s + 14 s = 34 s per migration, within a minute, so a
  deploy fails fast and says why rather than hanging.
- MIGRATION_STATEMENT_TIMEOUT=900 (15 minutes; PostgreSQL). Long enough for an
  index built CONCURRENTLY on tens of millions of rows; a statement that runs
  longer while holding a lock is an outage, and a backfill that long belongs
  in batches. A revision that needs more says so (below).

Set any of them in the environment (0 turns a timeout off), or for one
revision with a module-level LOCK_TIMEOUT, STATEMENT_TIMEOUT or LOCK_RETRIES
in the revision file (migrations/README, "Lock timeouts").

SQLite needs none of this: a waiting writer does not make readers queue, and
the driver's busy timeout (5 s in Python's sqlite3) already bounds the wait.
"""

import functools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Self

from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import DBAPIError

from .environment import ConfigError, seconds, whole_number

log = logging.getLogger("alembic.env")

BACKOFF_SECONDS = 2.0  # the first pause; it doubles after each retry

# Environment variable -> revision-file setting, and the default.
SETTINGS = {
    "lock_timeout": ("MIGRATION_LOCK_TIMEOUT", "LOCK_TIMEOUT", 5.0),
    "statement_timeout": ("MIGRATION_STATEMENT_TIMEOUT", "STATEMENT_TIMEOUT", 900.0),
    "lock_retries": ("MIGRATION_LOCK_RETRIES", "LOCK_RETRIES", 3),
}

# Statements that MySQL/MariaDB commit as they run.
_DDL = ("ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE")


@dataclass(frozen=True)
class Timeouts:
    lock_timeout: float  # seconds; 0: no timeout
    statement_timeout: float
    lock_retries: int

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Self:
        values: dict[str, Any] = {}
        for field, (variable, _, _) in SETTINGS.items():
            values[field] = _parse(field, environ.get(variable), variable)
        return cls(**values)

    def for_revision(self, module: ModuleType, path: str) -> Self:
        """These timeouts, with what the revision file at ``path`` sets."""
        changes = {}
        for field, (_, name, _) in SETTINGS.items():
            if hasattr(module, name):
                where = f"{os.path.basename(path)}'s {name}"
                changes[field] = _parse(
                    field, getattr(module, name), where, "Fix it, or remove it"
                )
        return replace(self, **changes)

    def describe(self, backend: str) -> str:
        statement = (
            f", statement timeout {_seconds(self.statement_timeout)}"
            if backend == "postgresql"
            else ""
        )
        return (
            f"lock timeout {_seconds(self.lock_timeout)}{statement},"
            f" lock retries {self.lock_retries}"
        )


def _parse(field: str, value: object, name: str, fix: str = "") -> Any:
    """The setting ``field`` from ``name`` (a variable, or a revision file's
    setting), parsed by environment.py; a bad one stops the command."""
    default = SETTINGS[field][2]
    try:
        if field == "lock_retries":
            return whole_number(name, value, default=int(default), maximum=20, fix=fix)
        return seconds(name, value, default=default, zero="no timeout", fix=fix)
    except ConfigError as exc:
        raise CommandError(exc.message) from None


def _seconds(value: float) -> str:
    return "off" if not value else f"{value:g} s"


@dataclass(frozen=True)
class Blocker:
    """A database session that holds a lock the migration waits for."""

    pid: int
    state: str
    seconds: float  # how long its transaction (or statement) has been open
    query: str

    def __str__(self) -> str:
        query = " ".join(self.query.split())
        if len(query) > 100:
            query = query[:100] + "..."
        return (
            f"session {self.pid} ({self.state or 'unknown state'}, transaction open"
            f" for {self.seconds:.0f} s, last query: {query or 'none shown'})"
        )


class _Run:
    """The state of one `flask db` command's migrations on one connection."""

    def __init__(
        self, migration_context: MigrationContext, connection: Connection
    ) -> None:
        self.context = migration_context
        self.connection = connection
        self.backend = (
            "postgresql" if connection.dialect.name == "postgresql" else "mysql"
        )
        self.defaults = Timeouts.from_environment()
        self.revision: tuple[str, str] | None = None  # (id, message) running now
        self.revision_timeouts: Timeouts | None = None  # and its settings
        self.ddl_applied = False  # MySQL: the running migration committed DDL
        self.blockers: list[Blocker] = []
        self.saved: tuple[Any, ...] = ()
        # The server session the migration runs on, for the blockers' watcher:
        # through a transaction pooler, each transaction may run on another.
        self.session = 0

    # -- the session's settings ------------------------------------------------

    def save(self) -> None:
        sql = (
            "SELECT current_setting('lock_timeout'),"
            " current_setting('statement_timeout')"
            if self.backend == "postgresql"
            else "SELECT @@SESSION.lock_wait_timeout,"
            " @@SESSION.innodb_lock_wait_timeout"
        )
        self.saved = tuple(self.connection.execute(text(sql)).one())

    def apply(self, timeouts: Timeouts) -> None:
        """Set ``timeouts`` for the next statements: on PostgreSQL for the rest
        of the transaction (set_config's is_local, as SET LOCAL), never for the
        session, which a transaction pooler would pass on to other clients;
        on MySQL/MariaDB for the session (its migrations connect directly)."""
        if self.backend == "postgresql":
            self._set_local(
                f"{round(timeouts.lock_timeout * 1000)}ms",
                f"{round(timeouts.statement_timeout * 1000)}ms",
            )
        elif timeouts.lock_timeout:
            # Whole seconds here; metadata locks (ALTER TABLE) and row locks.
            seconds = max(1, math.ceil(timeouts.lock_timeout))
            self.connection.execute(
                text(
                    "SET SESSION lock_wait_timeout = :s,"
                    " SESSION innodb_lock_wait_timeout = :s"
                ),
                {"s": seconds},
            )
        else:
            self.restore()

    def _set_local(self, lock_timeout: str, statement_timeout: str) -> None:
        for name, value in (
            ("lock_timeout", lock_timeout),
            ("statement_timeout", statement_timeout),
        ):
            self.connection.execute(
                text("SELECT set_config(:name, :value, true)"),
                {"name": name, "value": value},
            )

    def restore(self) -> None:
        if self.backend == "postgresql":
            # A transaction still open (a caller's) keeps its own settings.
            if self.saved and self.connection.in_transaction():
                self._set_local(*self.saved)
        elif self.saved:
            self.connection.execute(
                text(
                    "SET SESSION lock_wait_timeout = :a,"
                    " SESSION innodb_lock_wait_timeout = :b"
                ),
                {"a": self.saved[0], "b": self.saved[1]},
            )

    def session_id(self) -> int:
        sql = (
            "SELECT pg_backend_pid()"
            if self.backend == "postgresql"
            else "SELECT CONNECTION_ID()"
        )
        return int(self.connection.execute(text(sql)).scalar_one())

    # -- each revision ---------------------------------------------------------

    def wrap_revisions(self) -> None:
        """Run each revision's upgrade() and downgrade() with its own settings,
        and note which revision is running (Alembic has no hook before one).

        Once per ScriptDirectory (it loads each revision module once): the
        wrappers find the run in progress through _RUNNING, so a process that
        migrates several databases, or the tests' many steps, wrap each module
        once instead of once per run."""
        script = self.context.script
        if script is None or getattr(script, _WRAPPED, False):
            return
        for revision in script.walk_revisions():
            module = revision.module
            # Read now, so that a bad setting stops the command before any
            # revision runs; applied with the defaults of the run in progress.
            self.defaults.for_revision(module, revision.path)
            for name in ("upgrade", "downgrade"):
                function = getattr(module, name, None)
                if callable(function):
                    setattr(module, name, _wrap(function, revision, module))
        setattr(script, _WRAPPED, True)

    def note_ddl(self, *args: Any) -> None:
        """An after_cursor_execute listener: a DDL statement succeeded."""
        statement = str(args[2]).lstrip().upper()
        if statement.startswith(_DDL):
            self.ddl_applied = True

    def timeouts_of_running(self) -> Timeouts:
        return self.revision_timeouts or self.defaults


# The run in progress, for the wrapped revision functions; the attribute that
# marks a ScriptDirectory whose revisions are wrapped.
_RUNNING: ContextVar[_Run | None] = ContextVar("running_migrations", default=None)
_WRAPPED = "_wrapped_for_timeouts"


def _wrap(function: Callable[..., Any], revision: Script, module: ModuleType) -> Any:
    @functools.wraps(function)  # Alembic logs the function's name
    def run_revision(*args: Any, **kwargs: Any) -> Any:
        run = _RUNNING.get()
        if run is None:  # not through run_with_lock_retries (SQLite)
            return function(*args, **kwargs)
        timeouts = run.defaults.for_revision(module, revision.path)
        run.revision = (revision.revision, revision.doc)
        run.revision_timeouts = timeouts
        run.ddl_applied = False
        if run.backend == "postgresql":  # in the migration's own transaction
            run.session = run.session_id()
            run.apply(timeouts)
            return function(*args, **kwargs)
        if timeouts != run.defaults:
            run.apply(timeouts)
        result = function(*args, **kwargs)
        if timeouts != run.defaults:
            run.apply(run.defaults)
        return result

    return run_revision


@contextmanager
def batch_transaction(connection: Connection) -> Iterator[None]:
    """One transaction of a revision's own making inside Alembic's
    autocommit_block() (a backfill's batch), with the running migration's
    timeouts.

    In autocommit_block() each statement commits on its own, so PostgreSQL's
    SET LOCAL, which gives each migration's transaction its timeouts, has
    nothing to last for: a batch's UPDATE would wait for a row lock, and
    hold the rows it has updated, for as long as an idle transaction keeps
    it waiting. Here the batch runs in an explicit BEGIN ... COMMIT with the
    timeouts SET LOCAL (through a transaction pooler, BEGIN keeps the batch on
    one server connection); a lock timeout rolls the batch back and is retried
    as any migration's. MySQL/MariaDB keep the session's timeouts in
    autocommit, SQLite its busy timeout: there the statements run as they are.
    """
    run = _RUNNING.get()
    if run is None or run.backend != "postgresql" or run.connection is not connection:
        yield
        return
    connection.exec_driver_sql("BEGIN")
    try:
        run.session = run.session_id()  # for the blockers' watcher
        run.apply(run.timeouts_of_running())  # SET LOCAL, as in _wrap
        yield
    except BaseException:
        with suppress(DBAPIError):
            connection.exec_driver_sql("ROLLBACK")
        raise
    connection.exec_driver_sql("COMMIT")


def is_lock_timeout(exc: DBAPIError) -> bool:
    """PostgreSQL lock_not_available (55P03); MySQL/MariaDB error 1205."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "55P03":
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] == 1205


def is_statement_timeout(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "57014"


def run_with_lock_retries(
    migration_context: MigrationContext, run_migrations: Callable[[], None]
) -> None:
    """Call ``run_migrations`` (Alembic's) with lock and statement timeouts.

    A migration that times out waiting for a lock has been rolled back by its
    own transaction (transaction_per_migration): it is run again, from that
    migration on, after a pause; the ones before it stay applied. Then the
    command fails with a message that names the session holding the lock.
    """
    connection = migration_context.connection
    if connection is None or connection.dialect.name not in {
        "postgresql",
        "mysql",
        "mariadb",
    }:
        run_migrations()
        return
    run = _Run(migration_context, connection)
    # A caller that handed in a connection inside its own transaction owns that
    # transaction: a timeout there cannot be retried, only reported.
    owns_transactions = not connection.in_transaction()
    run.save()
    if run.backend == "mysql":
        run.apply(run.defaults)
    run.session = run.session_id()
    if owns_transactions:
        connection.commit()
    run.wrap_revisions()
    log.info("Migrations run with %s.", run.defaults.describe(run.backend))
    if run.backend == "mysql":
        event.listen(connection, "after_cursor_execute", run.note_ddl)
    failures: dict[str, int] = {}
    running = _RUNNING.set(run)
    try:
        with _watch_blockers(connection.engine, run):
            while True:
                run.blockers = []
                try:
                    run_migrations()
                    break
                except DBAPIError as exc:
                    if is_statement_timeout(exc) and run.backend == "postgresql":
                        raise CommandError(_statement_timeout_message(run)) from None
                    if not is_lock_timeout(exc):
                        raise
                    if owns_transactions and connection.in_transaction():
                        connection.rollback()
                    revision = run.revision[0] if run.revision else ""
                    failures[revision] = failures.get(revision, 0) + 1
                    allowed = run.timeouts_of_running().lock_retries
                    if (
                        failures[revision] > allowed
                        or not owns_transactions
                        or run.ddl_applied
                    ):
                        raise CommandError(
                            _lock_timeout_message(
                                run, failures[revision], owns_transactions
                            )
                        ) from None
                    pause = BACKOFF_SECONDS * 2 ** (failures[revision] - 1)
                    log.warning(
                        "Migration %s waited %s for a lock%s; rolled back, trying"
                        " again in %g s (retry %d of %d).",
                        revision,
                        _seconds(run.timeouts_of_running().lock_timeout),
                        f" held by {_name(run.blockers)}" if run.blockers else "",
                        pause,
                        failures[revision],
                        allowed,
                    )
                    time.sleep(pause)
                    if run.backend == "mysql":
                        run.apply(run.defaults)
                    if owns_transactions:
                        connection.commit()
    except BaseException:
        if not connection.invalidated:
            if owns_transactions and connection.in_transaction():
                connection.rollback()
            # A caller's aborted transaction refuses it, and its rollback
            # restores PostgreSQL's settings anyway.
            with suppress(DBAPIError):
                run.restore()
            if owns_transactions:
                connection.commit()
        raise
    else:
        # Alembic's own bookkeeping (alembic_version, created outside the
        # per-migration transactions) commits with the restored settings.
        run.restore()
        if owns_transactions:
            connection.commit()
    finally:
        _RUNNING.reset(running)
        if run.backend == "mysql":
            event.remove(connection, "after_cursor_execute", run.note_ddl)


def _name(blockers: list[Blocker]) -> str:
    return "; ".join(str(blocker) for blocker in blockers[:3])


def _lock_timeout_message(run: _Run, attempts: int, owns_transactions: bool) -> str:
    revision, doc = run.revision or ("?", "")
    timeouts = run.timeouts_of_running()
    if run.blockers:
        holder = f"The lock is held by {_name(run.blockers)}."
        kill = (
            f"SELECT pg_terminate_backend({run.blockers[0].pid})"
            if run.backend == "postgresql"
            else f"KILL {run.blockers[0].pid}"
        )
        action = (
            f"Let that session finish, or end it ({kill}), then run"
            " `flask db upgrade` again."
        )
    else:
        holder = (
            "The session holding it could not be seen (it may have let go just"
            " as the wait ended)."
        )
        action = "Look for long transactions, then run `flask db upgrade` again."
    if run.ddl_applied:
        undone = (
            "MySQL/MariaDB had already committed the DDL statements before the"
            " blocked one, so the migration is not retried: finish or undo them"
            " by hand first (migrations/README, Deploying)."
        )
    elif not owns_transactions:
        undone = "The caller's transaction holds the migration; it is not retried."
    else:
        undone = (
            f"It was rolled back each time and tried {attempts} time(s); the"
            " migrations before it are applied."
        )
    return (
        f"Migration {revision} ({doc}) gave up waiting for a lock: each try"
        f" waited {_seconds(timeouts.lock_timeout)}, so that the app's queries do"
        f" not queue behind it for longer. {undone} {holder} {action} To wait"
        " longer, raise MIGRATION_LOCK_TIMEOUT or MIGRATION_LOCK_RETRIES, or"
        " LOCK_TIMEOUT in the revision (migrations/README, Lock timeouts)."
    )


def _statement_timeout_message(run: _Run) -> str:
    revision, doc = run.revision or ("?", "")
    timeouts = run.timeouts_of_running()
    return (
        f"Migration {revision} ({doc}) ran a statement for longer than the"
        f" statement timeout ({_seconds(timeouts.statement_timeout)}); PostgreSQL"
        " cancelled it and the migration was rolled back. If it must take that"
        " long, set STATEMENT_TIMEOUT (seconds) in the revision, or"
        " MIGRATION_STATEMENT_TIMEOUT; a long data change is better done in"
        " batches (migrations/README, Lock timeouts)."
    )


# -- who holds the lock ----------------------------------------------------------

_POSTGRESQL_BLOCKERS = text(
    "SELECT pid, coalesce(state, ''),"
    " extract(epoch FROM now() - coalesce(xact_start, query_start, now())),"
    " coalesce(query, '')"
    " FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids(:session))"
    " ORDER BY xact_start"
)
_MYSQL_WAITING = text(
    "SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = :session"
)
# MariaDB names the holder of a metadata lock only with its metadata_lock_info
# plugin, and MySQL in performance_schema, neither on by default: so the
# suspects are the other sessions with a transaction open (a transaction keeps
# the metadata locks of every table it touched until it ends) on this
# database, oldest first.
_MYSQL_BLOCKERS = text(
    "SELECT p.ID, IF(p.COMMAND = 'Sleep', 'idle in transaction', p.COMMAND),"
    " TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), COALESCE(t.trx_query, p.INFO, '')"
    " FROM information_schema.INNODB_TRX t"
    " JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id"
    " WHERE p.ID <> :session AND p.DB = DATABASE() ORDER BY t.trx_started"
)

# A row lock (an UPDATE of a data migration or a backfill's batch): InnoDB
# names the transaction that holds it, while the processlist's state says only
# "Updating".
_MYSQL_ROW_BLOCKERS = text(
    "SELECT p.ID, IF(p.COMMAND = 'Sleep', 'idle in transaction', p.COMMAND),"
    " TIMESTAMPDIFF(SECOND, b.trx_started, NOW()), COALESCE(b.trx_query, p.INFO, '')"
    " FROM information_schema.INNODB_LOCK_WAITS w"
    " JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id"
    " JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id"
    " JOIN information_schema.PROCESSLIST p ON p.ID = b.trx_mysql_thread_id"
    " WHERE r.trx_mysql_thread_id = :session ORDER BY b.trx_started"
)


@contextmanager
def _watch_blockers(engine: Engine, run: _Run) -> Iterator[None]:
    """While the migrations run, a second connection notes who blocks them.

    The database says who holds a lock only while the migration waits for it;
    once the wait times out, that is gone, so it is looked up during the wait.
    """
    stop = threading.Event()
    interval = min(0.5, max(0.05, run.defaults.lock_timeout / 5 or 0.5))

    def watch() -> None:
        try:
            with engine.connect() as watcher:
                watcher = watcher.execution_options(isolation_level="AUTOCOMMIT")
                while not stop.wait(interval):
                    found = _blockers(watcher, run.backend, run.session)
                    if found:
                        run.blockers = found
        except Exception:  # the watcher must never fail a migration
            log.debug("Cannot watch for lock holders", exc_info=True)

    thread = threading.Thread(target=watch, name="migration-lock-watcher", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _blockers(watcher: Connection, backend: str, session: int) -> list[Blocker]:
    if backend == "postgresql":
        rows = watcher.execute(_POSTGRESQL_BLOCKERS, {"session": session}).all()
    else:
        try:
            rows = watcher.execute(_MYSQL_ROW_BLOCKERS, {"session": session}).all()
        except DBAPIError:  # MySQL 8 keeps lock waits in performance_schema
            rows = []
        if not rows:
            state = watcher.execute(_MYSQL_WAITING, {"session": session}).scalar()
            if not state or "lock" not in str(state).lower():
                return []
            rows = watcher.execute(_MYSQL_BLOCKERS, {"session": session}).all()
    return [Blocker(int(r[0]), str(r[1]), float(r[2] or 0), str(r[3])) for r in rows]
