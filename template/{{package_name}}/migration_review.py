"""Spot the operations in a migration that destroy data, and likely renames.

Autogenerate writes a renamed column or table as a drop and an add: the
upgrade destroys the data in it. `flask db migrate` (migrations/env.py) uses
this module to mark every destructive operation in the new revision, warn on
the terminal, and write the rename that was probably meant. The migration
tests use it to fail on any revision that destroys data without listing the
loss in its ACKNOWLEDGED_DATA_LOSS.
"""

import ast
import logging
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from alembic.autogenerate import render_python_code, renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops

ACKNOWLEDGEMENT = "ACKNOWLEDGED_DATA_LOSS"


def data_loss(op: ops.MigrateOperation) -> str | None:
    """What ``op`` destroys, in words, or None when it destroys nothing."""
    if isinstance(op, ops.DropTableOp):
        return f"drop table {op.table_name}"
    if isinstance(op, ops.DropColumnOp):
        return f"drop column {op.table_name}.{op.column_name}"
    if isinstance(op, ops.AlterColumnOp):
        column = f"{op.table_name}.{op.column_name}"
        if op.modify_type is not None and narrows(op.existing_type, op.modify_type):
            return (
                f"change type of {column} from {_describe(op.existing_type)}"
                f" to {_describe(op.modify_type)}"
            )
        removes_default = op.modify_server_default is None
        if (
            removes_default
            and op.existing_server_default
            and op.existing_nullable is False
        ):
            return f"drop the default of NOT NULL column {column}"
    return None


def narrows(old: Any, new: Any) -> bool:
    """Whether converting a column from type ``old`` to ``new`` can lose data."""
    if not isinstance(old, sa.types.TypeEngine) or not isinstance(
        new, sa.types.TypeEngine
    ):
        return True  # a type we cannot read: assume the worst
    if old._type_affinity is not new._type_affinity:
        return True
    if isinstance(old, sa.String) and isinstance(new, sa.String):
        return new.length is not None and (
            old.length is None or new.length < old.length
        )
    if isinstance(old, sa.Integer) and isinstance(new, sa.Integer):
        return _integer_size(new) < _integer_size(old)
    if isinstance(old, sa.Numeric) and isinstance(new, sa.Numeric):
        return _smaller(old.precision, new.precision) or _smaller(old.scale, new.scale)
    if isinstance(old, sa.DateTime) and isinstance(new, sa.DateTime):
        return bool(old.timezone) and not new.timezone
    return False


def _integer_size(type_: sa.Integer) -> int:
    if isinstance(type_, sa.BigInteger):
        return 8
    return 2 if isinstance(type_, sa.SmallInteger) else 4


def _smaller(old: int | None, new: int | None) -> bool:
    return new is not None and (old is None or new < old)


def _describe(type_: Any) -> str:
    return repr(type_) if type_ is not None else "an unknown type"


# --- Reviewing a revision that autogenerate is about to write ---------------


class Comment(ops.MigrateOperation):
    """A comment line in a generated revision, above the operation it explains."""

    def __init__(self, text: str) -> None:
        self.text = text

    def reverse(self) -> Self:
        return self


@renderers.dispatch_for(Comment)
def _render_comment(autogen_context: AutogenContext, op: Comment) -> str:
    return f"# {op.text}".rstrip()


@dataclass
class Review:
    data_loss: list[str]  # what each destructive operation destroys
    renames: list[tuple[str, str]]  # (what looks renamed, the code that keeps it)


def review(upgrade_ops: Sequence[ops.UpgradeOps]) -> Review:
    """Mark destructive operations and likely renames in ``upgrade_ops``, in place."""
    result = Review([], [])
    for container in upgrade_ops:
        _review_container(container, result)
        for old, new in _table_renames(container.ops):
            # Alembic renders no RenameTableOp (autogenerate never makes one).
            code = f"op.rename_table({old.table_name!r}, {new.table_name!r})"
            result.renames.append((f"table {old.table_name} -> {new.table_name}", code))
            _insert_before(
                container.ops,
                old,
                [
                    f"LIKELY RENAME: table {old.table_name} was dropped and table",
                    f"{new.table_name} created with the same columns. If it was",
                    "renamed, replace drop_table and create_table with:",
                    *[f"    {line}" for line in code.splitlines()],
                ],
            )
    return result


def _review_container(container: ops.OpContainer, result: Review) -> None:
    for op in list(container.ops):
        if isinstance(op, ops.OpContainer):
            _review_container(op, result)
        elif (loss := data_loss(op)) is not None:
            result.data_loss.append(loss)
            _insert_before(
                container.ops,
                op,
                [
                    f"DATA LOSS: {loss}. Reviewed and intended? Then add",
                    f'"{loss}" to {ACKNOWLEDGEMENT} at the top of this file.',
                ],
            )
    for dropped, added in _column_renames(container.ops):
        table, old, new = dropped.table_name, dropped.column_name, added.column.name
        column = dropped.to_column()
        rename = ops.AlterColumnOp(
            table,
            old,
            modify_name=new,
            existing_type=column.type,
            existing_nullable=column.nullable,
            existing_server_default=column.server_default,
        )
        # Inside the batch block already: just the batch_op line(s).
        code = _code(ops.ModifyTableOps(table, [rename]), inner=True)
        result.renames.append((f"column {table}.{old} -> {table}.{new}", code))
        _insert_before(
            container.ops,
            dropped,
            [
                f"LIKELY RENAME: {table}.{old} was dropped and {table}.{new} added,",
                "of a compatible type. If it was renamed, replace its add_column and",
                "drop_column with this, which keeps the data:",
                *[f"    {line}" for line in code.splitlines()],
            ],
        )


def _column_renames(
    operations: list[ops.MigrateOperation],
) -> Iterator[tuple[ops.DropColumnOp, ops.AddColumnOp]]:
    """Pairs of a dropped and an added column of the same table and kind of type."""
    added = [op for op in operations if isinstance(op, ops.AddColumnOp)]
    for dropped in [op for op in operations if isinstance(op, ops.DropColumnOp)]:
        old_type = dropped.to_column().type  # NullType when autogenerate did not say
        for candidate in added:
            if (
                candidate.table_name == dropped.table_name
                and candidate.column.type._type_affinity is old_type._type_affinity
            ):
                added.remove(candidate)
                yield dropped, candidate
                break


def _table_renames(
    operations: list[ops.MigrateOperation],
) -> Iterator[tuple[ops.DropTableOp, ops.CreateTableOp]]:
    """Pairs of a dropped and a created table with the same columns."""
    created = [op for op in operations if isinstance(op, ops.CreateTableOp)]
    for dropped in [op for op in operations if isinstance(op, ops.DropTableOp)]:
        shape = _shape(dropped.to_table().columns)
        for candidate in created:
            if _shape(candidate.to_table().columns) == shape:
                created.remove(candidate)
                yield dropped, candidate
                break


def _shape(columns: Any) -> set[tuple[str, type]]:
    return {(column.name, column.type._type_affinity) for column in columns}


def _insert_before(
    operations: list[ops.MigrateOperation], op: ops.MigrateOperation, lines: list[str]
) -> None:
    index = operations.index(op)
    operations[index:index] = [Comment(line) for line in lines]


def _code(op: ops.MigrateOperation, inner: bool = False) -> str:
    """The Python code of ``op``, as autogenerate would write it; with ``inner``,
    without the first line (a batch block's `with`)."""
    # render_python_code announces the scratch context it renders in; hush it.
    announcer = logging.getLogger("alembic.runtime.migration")
    level = announcer.level
    announcer.setLevel(logging.WARNING)
    try:
        code = render_python_code(ops.UpgradeOps(ops=[op]), render_as_batch=True)
    finally:
        announcer.setLevel(level)
    lines = [line for line in code.splitlines() if line.strip() and "###" not in line]
    return textwrap.dedent("\n".join(lines[1:] if inner else lines))


# --- Checking the revisions in migrations/versions ---------------------------


def data_loss_in_revision(path: Path, namespace: Mapping[str, Any]) -> list[str]:
    """What the upgrade() of the revision at ``path`` destroys.

    Reads the operations from the code without running it; ``namespace`` (the
    revision module's globals) resolves the types they mention.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    upgrade = next(
        (
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name == "upgrade"
        ),
        None,
    )
    if upgrade is None:
        return []
    finder = _OperationFinder(dict(namespace))
    finder.visit(upgrade)
    return [loss for op in finder.operations if (loss := data_loss(op)) is not None]


class _OperationFinder(ast.NodeVisitor):
    """Collects the Alembic operations an upgrade() calls, batch ones included."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.batches: dict[str, str] = {}  # `as` name -> table name
        self.operations: list[ops.MigrateOperation] = []

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            call = item.context_expr
            if (
                isinstance(call, ast.Call)
                and _method(call) == ("op", "batch_alter_table")
                and isinstance(item.optional_vars, ast.Name)
            ):
                self.batches[item.optional_vars.id] = self._text(
                    _argument(call, 0, "table_name")
                )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        owner, method = _method(node)
        if owner == "op":
            table = self._text(_argument(node, 0, "table_name"))
            column_position = 1
        elif owner in self.batches:
            table = self.batches[owner]
            column_position = 0
        else:
            self.generic_visit(node)
            return
        column = self._text(_argument(node, column_position, "column_name"))
        if method == "drop_table" and owner == "op":
            self.operations.append(ops.DropTableOp(table))
        elif method == "drop_column":
            self.operations.append(ops.DropColumnOp(table, column))
        elif method == "alter_column":
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            self.operations.append(
                ops.AlterColumnOp(
                    table,
                    column,
                    existing_type=self._value(keywords.get("existing_type")),
                    modify_type=self._value(keywords.get("type_")),
                    modify_server_default=(
                        self._value(keywords["server_default"])
                        if "server_default" in keywords
                        else False
                    ),
                    existing_server_default=self._value(
                        keywords.get("existing_server_default")
                    ),
                    existing_nullable=self._value(keywords.get("existing_nullable")),
                )
            )
        self.generic_visit(node)

    def _value(self, node: ast.expr | None) -> Any:
        if node is None:
            return None
        try:
            # The revision's own expressions (types, defaults), in its own globals.
            return eval(
                compile(ast.Expression(node), "<revision>", "eval"), self.namespace
            )
        except Exception:
            return _UNREADABLE

    def _text(self, node: ast.expr | None) -> str:
        value = self._value(node)
        return value if isinstance(value, str) else "?"


_UNREADABLE = object()


def _method(call: ast.Call) -> tuple[str, str]:
    if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
        return call.func.value.id, call.func.attr
    return "", ""


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)
