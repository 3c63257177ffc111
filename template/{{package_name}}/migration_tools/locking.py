"""One process migrates a database at a time.

When several instances of the app start at once and all run `flask db upgrade`,
the first takes the lock and migrates; the others wait, then find nothing to do.
"""

import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.util import CommandError
from sqlalchemy import Connection, TextClause, text

log = logging.getLogger("alembic.env")

LOCK_TIMEOUT_SECONDS = 600  # MySQL/MariaDB; PostgreSQL waits until the lock is free


@contextmanager
def migration_lock(connection: Connection, name: str) -> Iterator[None]:
    """Hold the database lock ``name`` on ``connection`` meanwhile.

    PostgreSQL: an advisory lock (they take a number: a CRC of ``name``);
    MySQL/MariaDB: GET_LOCK; SQLite: none (one file, one writer at a time),
    but what the migrations leave pending is committed there too.
    Both locks belong to the database session, not to a transaction: taken (and
    committed) before Alembic begins its own transactions, released in `finally`
    because a pooled connection would otherwise keep holding it. They need a
    real session: behind a transaction-pooling proxy such as PgBouncer, run
    migrations over a direct connection to the server.
    """
    backend = connection.dialect.name
    acquire: TextClause | None = None
    release: TextClause | None = None
    if backend == "postgresql":
        lock_id = zlib.crc32(name.encode())
        acquire = text("SELECT pg_advisory_lock(:id)").bindparams(id=lock_id)
        release = text("SELECT pg_advisory_unlock(:id)").bindparams(id=lock_id)
    elif backend in {"mysql", "mariadb"}:
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
        raise CommandError(
            f"Gave up after {LOCK_TIMEOUT_SECONDS}s waiting for the migration lock"
            f" {name!r}: another process is migrating this database. Wait for"
            " it to finish, then run the upgrade again."
        )
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
