"""One process migrates a database at a time, through a connection pooler too.

When several instances of the app start at once and all run `flask db upgrade`,
each migration must run once, and a lock must never outlive its holder.

PostgreSQL: a transaction-scoped advisory lock, taken inside each migration's
own transaction (env.py runs one transaction per migration) before Alembic
runs it. Under the lock the version table is read again: if another instance
moved it since this one read it, this one rolls back and starts over from the
new version, so it skips what the other applied. Why not a session lock
(`pg_advisory_lock`, held from start to end): a transaction-pooling proxy
(PgBouncer in transaction mode, RDS Proxy, Supavisor, PgCat) hands each
transaction whichever server connection is free. A session lock stays with the
server connection that took it, its unlock may land on another one, and the
lock is then held for ever by an idle pooled connection: every later deploy
waits for it, and instances that reach another server connection migrate at
the same time. A transaction's lock ends with the transaction (commit,
rollback, or a lost connection), and a transaction keeps its server connection
through any pooler. An instance that finds the lock taken holds no transaction
open while it waits: it rolls back and tries again after a pause, so waiting
instances take no server connections from the app. It gives up after
LOCK_TIMEOUT_SECONDS with a message. Migrations work the same over a direct
connection.

MySQL/MariaDB: GET_LOCK, which belongs to the session: taken before the
migrations and released after, on the same connection, waiting up to
LOCK_TIMEOUT_SECONDS. It needs a direct connection, or a proxy that keeps the
session on one server connection: ProxySQL stops multiplexing a session once
it runs GET_LOCK (its documentation, "Multiplexing"). ProxySQL is not packaged
in Debian, so the template's tests do not run through it.

SQLite: no lock (one file, one writer at a time).
"""

import logging
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import Connection, TextClause, text

log = logging.getLogger("alembic.env")

LOCK_TIMEOUT_SECONDS = 600  # the longest an instance waits for another's migrations
_PAUSES = (0.1, 0.2, 0.5, 1.0)  # between tries of the PostgreSQL lock; then 1 s


class _Busy(Exception):
    """Another instance holds the lock (PostgreSQL)."""


class _Moved(Exception):
    """Another instance moved the version table since this one read it."""


def _gave_up(name: str) -> CommandError:
    return CommandError(
        f"Gave up after {LOCK_TIMEOUT_SECONDS}s waiting for the migration lock"
        f" {name!r}: another process is migrating this database. Wait for it to"
        " finish, then run the upgrade again."
    )


@contextmanager
def migration_lock(connection: Connection, name: str) -> Iterator[None]:
    """MySQL/MariaDB: hold GET_LOCK(``name``) on ``connection`` meanwhile. On
    every engine, commit what the migrations leave pending.

    The lock is taken (and committed) before Alembic begins its own
    transactions and released in `finally`, as it belongs to the session.
    PostgreSQL's lock is per migration: see one_at_a_time().
    """
    acquire: TextClause | None = None
    release: TextClause | None = None
    if connection.dialect.name in {"mysql", "mariadb"}:
        acquire = text("SELECT GET_LOCK(:name, :timeout)").bindparams(
            name=name, timeout=LOCK_TIMEOUT_SECONDS
        )
        release = text("SELECT RELEASE_LOCK(:name)").bindparams(name=name)

    outside_transaction = not connection.in_transaction()
    acquired = None
    if acquire is not None:
        log.info("Taking the migration lock %r (waits while another holds it).", name)
        acquired = connection.execute(acquire).scalar()
        if outside_transaction:
            connection.commit()
    if acquired == 0:  # GET_LOCK timed out
        raise _gave_up(name)
    try:
        yield
    except BaseException:
        if outside_transaction and connection.in_transaction():
            connection.rollback()  # an aborted transaction cannot release
        raise
    else:
        # Commit what the migrations left open (Alembic creates alembic_version
        # outside the per-migration transactions, and commits it only with the
        # first migration: with none to run, it is still pending here) before
        # the next process can take the lock and look at the database.
        if outside_transaction and connection.in_transaction():
            connection.commit()
    finally:
        if release is not None:
            connection.execute(release)
            if outside_transaction:
                connection.commit()


def one_at_a_time(
    migration_context: MigrationContext, name: str, run_migrations: Callable[[], None]
) -> Callable[[], None]:
    """``run_migrations`` (Alembic's), each PostgreSQL migration under the
    transaction-scoped lock ``name`` (see the module's docstring); other
    engines: ``run_migrations`` itself (their lock is migration_lock())."""
    connection = migration_context.connection
    if (
        connection is None
        or connection.dialect.name != "postgresql"
        or migration_context.as_sql
    ):
        return run_migrations
    lock = text("SELECT pg_try_advisory_xact_lock(:id)").bindparams(
        id=zlib.crc32(name.encode())
    )

    def take() -> None:
        if not connection.execute(lock).scalar():
            raise _Busy

    if connection.in_transaction():
        # The caller's transaction holds every migration: one lock for all of
        # it, until the caller commits.
        def run_in_callers_transaction() -> None:
            _wait(connection, take, name, rollback=False)
            run_migrations()

        return run_in_callers_transaction

    # The heads this process expects to find, as Alembic's own bookkeeping
    # moves them: those it read first, then those after each migration it ran.
    expected: list[frozenset[str]] = [frozenset()]
    steps = migration_context._migrations_fn  # what the `flask db` command runs
    assert steps is not None

    def locked_steps(
        heads: tuple[str, ...], context: MigrationContext
    ) -> Iterable[Any]:
        expected[0] = frozenset(heads)
        for step in steps(heads, context):
            # Alembic begins the migration's transaction with this query (it
            # keeps a transaction already begun), logs and runs the migration.
            take()
            now = frozenset(context.get_current_heads())
            if now != expected[0]:
                raise _Moved(", ".join(sorted(now)) or "base")
            yield step

    def note_heads(*, heads: set[str], **_: Any) -> None:
        expected[0] = frozenset(heads)

    migration_context._migrations_fn = locked_steps
    migration_context.on_version_apply_callbacks = (
        *migration_context.on_version_apply_callbacks,
        note_heads,
    )

    def attempt() -> None:
        while True:
            try:
                run_migrations()
                return
            except _Moved as moved:
                connection.rollback()
                log.info(
                    "Another instance migrated the database meanwhile (now at %s);"
                    " reading the version again.",
                    moved,
                )

    def run() -> None:
        # Alembic creates the version table before any migration runs, outside
        # the migrations' transactions: two instances doing so at once on an
        # empty database collide. It is made here, under the lock.
        if not migration_context.opts.get("dont_mutate"):
            _wait(connection, take, name, rollback=True)
            migration_context._ensure_version_table()
            connection.commit()
        _wait(connection, attempt, name, rollback=True)

    return run


def _wait(
    connection: Connection, attempt: Callable[[], None], name: str, *, rollback: bool
) -> None:
    """Call ``attempt`` until it does not find the lock taken, pausing between
    tries (rolled back between them if ``rollback``); give up after
    LOCK_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    tries = 0
    while True:
        try:
            attempt()
            return
        except _Busy:
            if rollback:
                connection.rollback()
            if tries == 0:
                log.info(
                    "Waiting for the migration lock %r: another instance is migrating.",
                    name,
                )
            if time.monotonic() >= deadline:
                raise _gave_up(name) from None
            time.sleep(_PAUSES[min(tries, len(_PAUSES) - 1)])
            tries += 1
