"""Make every engine refuse what one engine would silently get wrong.

Adding a NOT NULL column without a server default to a table that holds rows
fails on PostgreSQL and SQLite (the rows would have no value), but MySQL and
MariaDB accept it, even in strict mode, and write 0 or '' into every row. A
migration tried on PostgreSQL must not do something else in production on
MariaDB, so the check runs here, in Alembic's own implementation of
add_column, the same way on every engine, before the database sees the ALTER.
The review (rules.py) flags the same operation at `flask db migrate`.
"""

from alembic.operations import Operations, ops
from alembic.operations.toimpl import add_column as alembic_add_column
from alembic.util import CommandError
from sqlalchemy import literal, select, table


def install() -> None:
    """Put the check in front of Alembic's add_column (op and batch_op)."""
    Operations.implementation_for(ops.AddColumnOp, replace=True)(_add_column)


def _add_column(operations: Operations, operation: ops.AddColumnOp) -> None:
    column = operation.column
    if (
        not operations.migration_context.as_sql  # `upgrade --sql`: no rows to see
        and column.nullable is False
        and column.server_default is None
        and column.computed is None
        and column.identity is None
        and _has_rows(operations, operation.table_name, operation.schema)
    ):
        raise CommandError(
            f"Cannot add the NOT NULL column {operation.table_name}.{column.name}:"
            f" {operation.table_name} holds rows, and the column has no server"
            " default to give them. PostgreSQL and SQLite refuse this, and"
            " MySQL/MariaDB would silently write 0 or '' into every row, so the"
            " migration refuses it on every engine. Give the column a"
            " server_default (in the model, then generate the revision again), or"
            " add it nullable, fill it, and make it NOT NULL afterwards"
            ' (migrations/README, "Adding a NOT NULL column").'
        )
    alembic_add_column(operations, operation)


def _has_rows(operations: Operations, name: str, schema: str | None) -> bool:
    query = select(literal(1)).select_from(table(name, schema=schema)).limit(1)
    return operations.get_bind().execute(query).first() is not None
