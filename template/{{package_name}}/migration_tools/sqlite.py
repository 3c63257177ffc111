"""SQLite's foreign keys while migrations run.

The app enforces foreign keys on SQLite (extensions.py), like the servers do.
Batch mode changes a SQLite table by copying it, dropping the original and
renaming the copy; with enforcement on, that DROP would delete the original's
rows first, and ON DELETE CASCADE would empty the tables that point at it. So
enforcement is off while migrations run, and each migration is checked for rows
that point at nothing before it commits, as a server would refuse them.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.util import CommandError
from sqlalchemy import Connection


@contextmanager
def foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Turn off SQLite's foreign-key enforcement on ``connection`` meanwhile.

    The pragma is ignored inside a transaction, so it goes straight to the
    driver, before Alembic begins one. A no-op on other engines.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    (enforced_before,) = driver_connection.execute("PRAGMA foreign_keys").fetchone()
    driver_connection.execute("PRAGMA foreign_keys=OFF")
    (enforced,) = driver_connection.execute("PRAGMA foreign_keys").fetchone()
    if enforced:
        raise CommandError(
            "Cannot turn off SQLite foreign keys for the migration: the connection"
            " is already in a transaction. Hand Alembic a connection outside a"
            " transaction."
        )
    try:
        yield
    finally:
        driver_connection.execute(f"PRAGMA foreign_keys={enforced_before}")


def check_foreign_keys(*, ctx: MigrationContext, step: MigrationInfo, **_: Any) -> None:
    """Fail a SQLite migration, before it commits, if it leaves orphan rows.

    An Alembic ``on_version_apply`` hook; a no-op on other engines.
    """
    connection = ctx.connection
    if connection is None or connection.dialect.name != "sqlite":
        return
    orphans = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if orphans:
        listed = ", ".join(
            f"{table} row {rowid} -> {parent}"
            for table, rowid, parent, _ in orphans[:5]
        )
        raise CommandError(
            f"Migration {step.up_revision_id} leaves {len(orphans)} row(s) whose"
            f" foreign key points at no row ({listed}). It was rolled back. Fix or"
            " delete those rows in the migration before the constraint applies."
        )
