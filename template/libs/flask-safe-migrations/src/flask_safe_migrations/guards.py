"""Make every engine refuse, in the same words, a change the rows in the table
forbid, before the database sees it.

Adding a NOT NULL column without a server default to a table that holds rows
fails on PostgreSQL and SQLite (the rows would have no value), but MySQL and
MariaDB accept it, even in strict mode, and write 0 or '' into every row. A
migration tried on PostgreSQL must not do something else in production on
MariaDB, so the check runs here, in Alembic's own implementation of
add_column, the same way on every engine, before the database sees the ALTER.
The review (rules.py) flags the same operation at `flask db migrate`.

The same for the changes that fail on existing data, each of which every
engine refuses in its own words (a raw UniqueViolation, error 1062, a
rebuild's IntegrityError) or, in MySQL's non-strict mode, carries out by
cutting the values: a unique constraint or index over duplicates (the message
names them), a CHECK that rows violate, a string column narrowed below its
longest value. The checks are Alembic's own implementations with a query in
front (Operations.implementation_for), for op and batch_op alike; with `flask
db upgrade --sql` there are no rows to see, and they stand aside.

In a downgrade the rows are the ones written since the upgrade, and the advice
differs: the message names the revision being downgraded and says what to do
in its downgrade() (follow_steps() tells the checks which step runs).
"""

from collections.abc import Iterator, Sequence
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from alembic.operations import Operations, ops
from alembic.operations.toimpl import add_column as alembic_add_column
from alembic.operations.toimpl import alter_column as alembic_alter_column
from alembic.operations.toimpl import create_constraint as alembic_create_constraint
from alembic.operations.toimpl import create_index as alembic_create_index
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.util import CommandError
from sqlalchemy import Executable, Row, literal, select, table

# How many offending values a message shows, and how much of each.
_SHOWN = 3
_WIDTH = 40


def install() -> None:
    """Put the check in front of Alembic's add_column (op and batch_op)."""
    Operations.implementation_for(ops.AddColumnOp, replace=True)(_add_column)
    Operations.implementation_for(ops.CreateIndexOp, replace=True)(_create_index)
    Operations.implementation_for(ops.AlterColumnOp, replace=True)(_alter_column)
    for constraint in (ops.CreateUniqueConstraintOp, ops.CreateCheckConstraintOp):
        Operations.implementation_for(constraint, replace=True)(_create_constraint)


# The revision step each migration context is running (follow_steps).
_RUNNING: "WeakKeyDictionary[MigrationContext, Any]" = WeakKeyDictionary()


def follow_steps(migration_context: MigrationContext) -> None:
    """Note each step ``migration_context`` runs, for the messages. Alembic has
    no hook before a step runs (on_version_apply comes after): the steps are
    noted as the command's step function hands them to it (locking.py wraps it
    the same way)."""
    steps = migration_context._migrations_fn
    if steps is None:
        return

    def noted(heads: Any, context: MigrationContext) -> Iterator[Any]:
        try:
            for step in steps(heads, context):
                _RUNNING[migration_context] = step
                yield step
        finally:
            _RUNNING.pop(migration_context, None)

    migration_context._migrations_fn = noted


def _downgrading(operations: Operations) -> str | None:
    """The revision whose downgrade is running, as "revision <id> (<message>)";
    None in an upgrade."""
    step = _RUNNING.get(operations.migration_context)
    if not isinstance(step, RevisionStep) or step.is_upgrade:
        return None
    revision = step.revision
    return f"revision {revision.revision}" + (
        f" ({revision.doc})" if revision.doc else ""
    )


def _refusal(
    operations: Operations, what: str, why: str, fix: str, downgrade_fix: str
) -> CommandError:
    """The error "Cannot <what>: <why> <fix>"; in a downgrade, said of the
    revision, with the advice for its downgrade()."""
    revision = _downgrading(operations)
    if revision is None:
        return CommandError(f"Cannot {what}: {why} {fix}")
    return CommandError(
        f"The downgrade of {revision} cannot {what}: {why} {downgrade_fix}"
    )


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
        raise _refusal(
            operations,
            f"add the NOT NULL column {operation.table_name}.{column.name}",
            f"{operation.table_name} holds rows, and the column has no server"
            " default to give them. PostgreSQL and SQLite refuse this, and"
            " MySQL/MariaDB would silently write 0 or '' into every row, so the"
            " migration refuses it on every engine.",
            "Give the column a server_default (in the model, then generate the"
            " revision again), or add it nullable, fill it with"
            " flask_safe_migrations.backfill() and make it NOT NULL afterwards"
            ' (migrations/README, "Adding a NOT NULL column").',
            "In downgrade(), give add_column a server_default, or add the column"
            " nullable, fill it with flask_safe_migrations.backfill(), then set"
            " NOT NULL. If the values cannot be restored, acknowledge the review's"
            ' finding ("downgrade: add NOT NULL column'
            f" {operation.table_name}.{column.name} without a server"
            ' default") and downgrade only a database whose table is empty.',
        )
    alembic_add_column(operations, operation)


def _has_rows(operations: Operations, name: str, schema: str | None) -> bool:
    query = select(literal(1)).select_from(table(name, schema=schema)).limit(1)
    return operations.get_bind().execute(query).first() is not None


def _create_index(operations: Operations, operation: ops.CreateIndexOp) -> None:
    if operation.unique and _sees_rows(operations):
        _refuse_duplicates(
            operations,
            operation.table_name,
            operation.schema,
            list(operation.columns),
            f"the unique index {operation.index_name}",
        )
    alembic_create_index(operations, operation)


def _create_constraint(operations: Operations, operation: ops.AddConstraintOp) -> None:
    if _sees_rows(operations):
        if isinstance(operation, ops.CreateUniqueConstraintOp):
            _refuse_duplicates(
                operations,
                operation.table_name,
                operation.schema,
                list(operation.columns),
                f"the unique constraint {operation.constraint_name}",
            )
        elif isinstance(operation, ops.CreateCheckConstraintOp):
            _refuse_violations(operations, operation)
    alembic_create_constraint(operations, operation)


def _alter_column(operations: Operations, operation: ops.AlterColumnOp) -> None:
    new, old = operation.modify_type, operation.existing_type
    if (
        isinstance(new, sa.String)
        and new.length is not None
        and not (
            isinstance(old, sa.String)
            and old.length is not None
            and old.length <= new.length
        )
        and _sees_rows(operations)
    ):
        _refuse_longer_values(operations, operation, new.length)
    alembic_alter_column(operations, operation)


def _sees_rows(operations: Operations) -> bool:
    return not operations.migration_context.as_sql  # `upgrade --sql`: no rows


def _refuse_duplicates(
    operations: Operations, name: str, schema: str | None, columns: list[Any], what: str
) -> None:
    """Refuse ``what`` on table ``name`` if rows repeat a value of ``columns``
    (rows with a NULL in them repeat nothing: every engine lets NULLs repeat)."""
    if not columns or not all(isinstance(c, str) for c in columns):
        return  # an expression index: the engine judges it
    source = table(name, *(sa.column(c) for c in columns), schema=schema)
    query = (
        select(*source.c, sa.func.count().label("times"))
        .where(*(c.is_not(None) for c in source.c))
        .group_by(*source.c)
        .having(sa.func.count() > 1)
        .order_by(sa.func.count().desc())
        .limit(_SHOWN + 1)
    )
    repeated = _rows(operations, query)
    if not repeated:
        return
    shown = "; ".join(
        ", ".join(_value(value) for value in tuple(row)[:-1]) + f" ({row[-1]} rows)"
        for row in repeated[:_SHOWN]
    )
    more = " and more" if len(repeated) > _SHOWN else ""
    raise _refusal(
        operations,
        f"add {what} on {name} ({', '.join(columns)})",
        f"rows repeat {shown}{more}. Every engine refuses it, each in its own words.",
        "Remove or merge the duplicates first, in this migration before the"
        " constraint (an UPDATE or DELETE through op.execute) or in a data"
        " migration of its own, then run the upgrade again.",
        "Rows written since the upgrade repeat values it allowed: remove or"
        " merge the duplicates in downgrade(), before it restores the"
        " constraint (an UPDATE or DELETE through op.execute), then run the"
        " downgrade again.",
    )


def _refuse_violations(
    operations: Operations, operation: ops.CreateCheckConstraintOp
) -> None:
    condition = operation.condition
    violated = (
        sa.text(f"NOT ({condition})")
        if isinstance(condition, str)
        else sa.not_(condition)
    )
    source = table(operation.table_name, schema=operation.schema)
    counted = _rows(
        operations, select(sa.func.count()).select_from(source).where(violated)
    )
    count = counted[0][0] if counted else 0
    if count:
        raise _refusal(
            operations,
            f"add the CHECK constraint {operation.constraint_name} on"
            f" {operation.table_name}",
            f"{count} row(s) violate it ({condition}).",
            "Fix or delete those rows first, in this migration before the"
            " constraint or in a data migration of its own, then run the upgrade"
            " again.",
            "Rows written since the upgrade violate it: fix or delete them in"
            " downgrade(), before it restores the constraint, then run the"
            " downgrade again.",
        )


def _refuse_longer_values(
    operations: Operations, operation: ops.AlterColumnOp, length: int
) -> None:
    column: sa.ColumnClause[Any] = sa.column(operation.column_name)
    source = table(operation.table_name, column, schema=operation.schema)
    found = _rows(
        operations,
        select(sa.func.count(), sa.func.max(sa.func.length(column)))
        .select_from(source)
        .where(sa.func.length(column) > length),
    )
    longest: tuple[Any, ...] = tuple(found[0]) if found else (0, 0)
    if longest[0]:
        raise _refusal(
            operations,
            f"narrow {operation.table_name}.{operation.column_name} to"
            f" {length} characters",
            f"{longest[0]} row(s) hold longer values (up to {longest[1]})."
            " PostgreSQL refuses it, MySQL without strict mode would cut them,"
            " and SQLite would keep them longer than the column says, so the"
            " migration refuses it on every engine.",
            "Shorten or move those values first, or keep the column wider.",
            "Rows written since the upgrade hold them: shorten or move them in"
            " downgrade(), before the alter_column, or leave the column wide.",
        )


def _rows(operations: Operations, query: Executable) -> Sequence[Row[Any]] | None:
    """The rows of ``query``, or None when the table does not hold what the
    query names yet: a column that the same batch block adds (batch mode applies
    the block at its end), which has no values to judge."""
    bind = operations.get_bind()
    try:
        with bind.begin_nested():  # a failed query must not end the migration's
            return bind.execute(query).all()
    except sa.exc.DBAPIError:
        return None


def _value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."
