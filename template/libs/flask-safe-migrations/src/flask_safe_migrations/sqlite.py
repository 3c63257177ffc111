"""SQLite's foreign keys while migrations run.

The app enforces foreign keys on SQLite (init_app), like the servers do.
Batch mode changes a SQLite table by copying it, dropping the original and
renaming the copy; with enforcement on, that DROP would delete the original's
rows first, and ON DELETE CASCADE would empty the tables that point at it. So
enforcement is off while migrations run, and each migration is checked for rows
that point at nothing before it commits, as a server would refuse them.

Batch mode and computed (generated) columns: two upstream bugs are worked
around here, see _SQLiteImpl and _reflect_generated_expression.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic.ddl.sqlite import SQLiteImpl
from alembic.operations.batch import ApplyBatchImpl
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.util import CommandError
from sqlalchemy import Connection, Table, event, text
from sqlalchemy.engine import Inspector


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


class _SQLiteImpl(SQLiteImpl):
    """Alembic's SQLite implementation, with generated columns left out of the
    copy that a batch rebuild makes: Alembic (1.20) copies every column, and
    SQLite refuses with "cannot INSERT into generated column". The new table
    computes them again. Defining the class registers it for "sqlite" in
    Alembic's implementation registry, in place of Alembic's own."""

    __dialect__ = "sqlite"

    def prep_table_for_batch(self, batch_impl: ApplyBatchImpl, table: Table) -> None:
        super().prep_table_for_batch(batch_impl, table)
        for column in table.c:
            if column.computed is not None:
                batch_impl.column_transfers.get(column.name, {}).pop("expr", None)


_GENERATED = r"[^,]*?\bGENERATED\s+ALWAYS\s+AS\s*\("


@event.listens_for(Table, "column_reflect")
def _reflect_generated_expression(
    inspector: Inspector, table: Table, column_info: dict[str, Any]
) -> None:
    """Read a SQLite generated column's expression up to its closing
    parenthesis. SQLAlchemy's reflection reads to the last parenthesis of the
    line, and `ALTER TABLE ADD COLUMN` (Alembic's add_column on SQLite) writes
    the new column on the generated column's line: the next batch rebuild would
    then create the table from a mangled expression."""
    computed = column_info.get("computed")
    if not computed or inspector.dialect.name != "sqlite":
        return
    query = text(
        f'SELECT sql FROM "{table.schema or "main"}".sqlite_master'
        " WHERE type = 'table' AND name = :name"
    ).bindparams(name=table.name)
    bind = inspector.bind
    if isinstance(bind, Connection):
        sql = str(bind.execute(query).scalar() or "")
    else:
        with bind.connect() as connection:
            sql = str(connection.execute(query).scalar() or "")
    name = re.escape(column_info["name"])
    match = re.search(rf"(?<![\w$]){name}\W{_GENERATED}", sql, re.IGNORECASE)
    if match is None:
        return
    depth, start = 1, match.end()
    for end in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[end], 0)
        if depth == 0:
            computed["sqltext"] = sql[start:end]
            return
