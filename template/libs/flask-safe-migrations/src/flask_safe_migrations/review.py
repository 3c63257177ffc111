"""Review a migration for what needs a person: data loss, changes that fail
only once a table holds rows, DDL that blocks traffic, renames.

`flask db migrate` (migrations/env.py) runs the rules (rules.py) over what
autogenerate found: each finding is marked next to its operation in the new
revision, with the safe form, and printed on the terminal; a column or table
that was dropped and added again gets the rename that keeps its data. The
migration tests run the same rules over every revision's upgrade(), written
by autogenerate or by hand, and fail on a finding that the revision does not
list in its ACKNOWLEDGED.

downgrade() is reviewed too, for what stops it on the rows written since the
upgrade (a column added back NOT NULL without a default, a type narrowed
back): its findings' texts start with "downgrade: ", its advice is for the
downgrade, and the same ACKNOWLEDGED list accepts them.
"""

import ast
import logging
import textwrap
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Self

from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import MigrationScript, ops
from alembic_postgresql_enum.operations.sync_enum_values import SyncEnumValuesOp

from .renames import carried_by
from .rules import BREAKS_RUNNING_RELEASE, Finding, Where, code, findings

# What a revision lists to accept a finding, in the words the finding uses.
ACKNOWLEDGEMENT = "ACKNOWLEDGED"
# The list's name in revisions written before the review flagged more than
# data loss; still read.
LEGACY_ACKNOWLEDGEMENT = "ACKNOWLEDGED_DATA_LOSS"


class Comment(ops.MigrateOperation):
    """A comment line in a generated revision, above the operation it explains."""

    def __init__(self, text: str) -> None:
        self.text = text

    def reverse(self) -> Self:
        return self


@renderers.dispatch_for(Comment)
def _render_comment(autogen_context: AutogenContext, op: Comment) -> str:
    return f"# {op.text}".rstrip()


# --- Reviewing a revision that autogenerate is about to write ---------------


@dataclass
class Review:
    findings: list[Finding] = field(default_factory=list)
    # (what looks renamed, the code that keeps the data, its finding's text)
    renames: list[tuple[str, str, str]] = field(default_factory=list)

    def acknowledgements(self) -> list[tuple[str, str]]:
        """(note, text) for the revision's ACKNOWLEDGED list (script.py.mako)."""
        notes = [(_label(finding), finding.text) for finding in self.findings]
        notes += [
            (f"{BREAKS_RUNNING_RELEASE}, once the rename is applied", text)
            for _, _, text in self.renames
        ]
        return list(dict.fromkeys(notes))

    def report(self) -> list[str]:
        """The terminal's account of the review."""
        lines = []
        if self.findings:
            lines.append(
                "Warning: the review flagged this revision. Use the safe form, or"
                f" acknowledge each in its {ACKNOWLEDGEMENT} list:"
            )
        for finding in self.findings:
            lines.append(f"  - {_label(finding)}: {finding.text}")
            lines.append(textwrap.indent(_fix(finding), "      "))
        for what, rename, _ in self.renames:
            lines.append(f"Likely rename ({what}). To keep the data, use instead:")
            lines.append(textwrap.indent(rename, "    "))
        if lines:
            lines.append(
                "The revision's comments say the same; migrations/README"
                ' ("What the review flags") explains each.'
            )
        return lines


def review(
    script: MigrationScript,
    production_engine: str,
    naming_convention: Mapping[Any, Any] | None = None,
) -> Review:
    """Mark findings and likely renames in ``script``'s operations, in place,
    for a project that runs ``production_engine`` in production (and names
    its constraints and indexes by ``naming_convention``)."""
    convention = naming_convention or {}
    result = Review()
    for in_downgrade, containers in (
        (False, script.upgrade_ops_list),
        (True, script.downgrade_ops_list),
    ):
        for container in containers:
            operations = list(_flatten(container.ops))
            where = Where(
                new_tables=_tables(operations, ops.CreateTableOp),
                dropped_tables=_tables(operations, ops.DropTableOp),
                production_engine=production_engine,
                in_downgrade=in_downgrade,
            )
            _review_container(container, where, result)
    # The downgrade gets the reverse rename, so that it keeps the data too.
    for upgrade_ops in script.upgrade_ops_list:
        _hint_renames(upgrade_ops, result, convention, in_upgrade=True)
    for downgrade_ops in script.downgrade_ops_list:
        _hint_renames(downgrade_ops, result, convention, in_upgrade=False)
    return result


def _flatten(operations: Iterable[ops.MigrateOperation]) -> Iterator[Any]:
    for op in operations:
        if isinstance(op, ops.OpContainer):
            yield from _flatten(op.ops)
        else:
            yield op


def _tables(operations: list[Any], kind: type[Any]) -> frozenset[str]:
    return frozenset(op.table_name for op in operations if isinstance(op, kind))


def _review_container(container: ops.OpContainer, where: Where, result: Review) -> None:
    for op in list(container.ops):
        if isinstance(op, ops.OpContainer):
            _review_container(op, where, result)
            continue
        for finding in findings(op, where):
            result.findings.append(finding)
            _insert_before(container.ops, op, _comment(finding, container))


def _label(finding: Finding) -> str:
    return f"{finding.kind}, in downgrade()" if finding.in_downgrade else finding.kind


def _comment(finding: Finding, container: ops.OpContainer) -> list[str]:
    lines = [f"{finding.kind}: {finding.text}."]
    if not finding.in_downgrade or finding.rule.downgrade is finding.rule.fix:
        lines += textwrap.wrap(finding.rule.why, 76)  # the downgrade's says why
    fix = _fix(finding)
    if "\n" in fix or fix.startswith(("op.", "batch_op.", "with ", "if ")):
        outside = isinstance(container, ops.ModifyTableOps) and not fix.startswith(
            "batch_op."
        )
        lines.append("Safe form" + (", outside the batch block:" if outside else ":"))
        lines += [f"    {line}" for line in fix.splitlines()]
    else:
        lines += textwrap.wrap(fix, 76)
    lines += [
        "Intended as written? Acknowledge it in ACKNOWLEDGED at the top of this file.",
    ]
    return lines


def _fix(finding: Finding) -> str:
    with _hushed():
        return finding.fix()


@contextmanager
def _hushed() -> Iterator[None]:
    """render_python_code announces the scratch context it renders in; hush it."""
    announcer = logging.getLogger("alembic.runtime.migration")
    level = announcer.level
    announcer.setLevel(logging.WARNING)
    try:
        yield
    finally:
        announcer.setLevel(level)


def _hint_renames(
    container: ops.OpContainer,
    result: Review,
    convention: Mapping[Any, Any],
    in_upgrade: bool,
) -> None:
    for op in container.ops:
        if isinstance(op, ops.ModifyTableOps):
            _hint_column_renames(op, result, convention, in_upgrade)
    for old, new in _table_renames(container.ops):
        rename = f"op.rename_table({old.table_name!r}, {new.table_name!r})"
        if in_upgrade:
            result.renames.append(
                (
                    f"table {old.table_name} -> {new.table_name}",
                    rename,
                    f"rename table {old.table_name} to {new.table_name}",
                )
            )
        _insert_before(
            container.ops,
            old,
            [
                f"LIKELY RENAME: table {old.table_name} was dropped and table",
                f"{new.table_name} created with the same columns. If it was",
                "renamed, replace drop_table and create_table with:",
                f"    {rename}",
            ],
        )


def _hint_column_renames(
    container: ops.ModifyTableOps,
    result: Review,
    convention: Mapping[Any, Any],
    in_upgrade: bool,
) -> None:
    """Suggest the rename for a dropped-and-added column: the whole batch block,
    rewritten, because the rename needs a block of its own. In the same block,
    SQLite's rebuild would silently leave out a constraint or index that the
    block creates on the renamed column. The unique constraints and indexes
    whose convention names the rename carries (renames.py) are left out."""
    pairs = list(_column_renames(container.ops))
    if not pairs:
        return
    table = container.table_name
    paired = {id(op) for pair in pairs for op in pair}
    renames: list[ops.MigrateOperation] = []
    for dropped, added in pairs:
        column = dropped.to_column()
        renames.append(
            ops.AlterColumnOp(
                table,
                dropped.column_name,
                modify_name=added.column.name,
                existing_type=column.type,
                existing_nullable=column.nullable,
                existing_server_default=column.server_default,
            )
        )
    carried = carried_by(
        convention,
        table,
        {dropped.column_name: added.column.name for dropped, added in pairs},
        container.ops,
    )
    rest = [
        op
        for op in container.ops
        if id(op) not in paired | carried and not isinstance(op, Comment)
    ]
    blocks = [ops.ModifyTableOps(table, renames, schema=container.schema)]
    if rest:
        blocks.append(ops.ModifyTableOps(table, rest, schema=container.schema))
    with _hushed():
        replacement = code(*blocks)
    if in_upgrade:
        for dropped, added in pairs:
            old, new = f"{table}.{dropped.column_name}", f"{table}.{added.column.name}"
            result.renames.append(
                (f"column {old} -> {new}", replacement, f"rename column {old} to {new}")
            )
    what = ", ".join(
        f"{dropped.column_name} -> {added.column.name}" for dropped, added in pairs
    )
    container.ops[:0] = [
        Comment(line)
        for line in [
            f"LIKELY RENAME in {container.table_name}: {what} (dropped and added,",
            "of a compatible type). If renamed, replace this whole batch block with",
            "the following, which keeps the data. The rename gets a block of its",
            "own: in one block, SQLite's rebuild drops the constraints and indexes",
            "created on the renamed column.",
            *[f"    {line}" for line in replacement.splitlines()],
        ]
    ]


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


# --- Checking the revisions in migrations/versions ---------------------------


def acknowledged(module: ModuleType) -> set[str]:
    """The findings a revision module acknowledges."""
    return {
        *getattr(module, ACKNOWLEDGEMENT, []),
        *getattr(module, LEGACY_ACKNOWLEDGEMENT, []),
    }


def unacknowledged(
    path: Path, module: ModuleType, production_engine: str
) -> list[Finding]:
    """The findings in the upgrade() and downgrade() of the revision at
    ``path`` (its module: ``module``) that it does not acknowledge."""
    accepted = acknowledged(module)
    return [
        finding
        for finding in findings_in_revision(path, vars(module), production_engine)
        if finding.text not in accepted
    ]


def findings_in_revision(
    path: Path, namespace: dict[str, Any], production_engine: str
) -> list[Finding]:
    """What the rules find in the upgrade() and downgrade() of the revision at
    ``path``, and in its upgrade_<bind>() and downgrade_<bind>() functions
    (binds.py); the downgrade's findings are marked ``in_downgrade``.

    Reads the operations from the code without running it; ``namespace`` (the
    revision module's globals) resolves the types and columns they mention.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef):
            continue
        direction = function.name.partition("_")[0]
        if direction not in {"upgrade", "downgrade"}:
            continue
        finder = _OperationFinder(dict(namespace))
        finder.visit(function)
        operations: list[Any] = [op for op, _ in finder.operations]
        new_tables = _tables(operations, ops.CreateTableOp)
        dropped_tables = _tables(operations, ops.DropTableOp)
        for op, postgresql in finder.operations:
            where = Where(
                new_tables,
                dropped_tables,
                postgresql,
                production_engine,
                in_downgrade=direction == "downgrade",
            )
            found += findings(op, where)
    return found


def upgrade_operations(path: Path, namespace: dict[str, Any]) -> list[Any]:
    """The Alembic operations the upgrade() (and upgrade_<bind>()) functions of
    the revision at ``path`` call, read as findings_in_revision reads them."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Any] = []
    for upgrade in tree.body:
        if isinstance(upgrade, ast.FunctionDef) and (
            upgrade.name == "upgrade" or upgrade.name.startswith("upgrade_")
        ):
            finder = _OperationFinder(dict(namespace))
            finder.visit(upgrade)
            found += [op for op, _ in finder.operations]
    return found


class _OperationFinder(ast.NodeVisitor):
    """Collects the Alembic operations an upgrade() or downgrade() calls, batch
    ones included, each with whether it runs on PostgreSQL (not in an `else` of
    a dialect test)."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.batches: dict[str, str] = {}  # `as` name -> table name
        self.operations: list[tuple[ops.MigrateOperation, bool]] = []
        self.postgresql = True

    def visit_If(self, node: ast.If) -> None:
        branch = _postgresql_test(node.test)
        if branch is None:
            self.generic_visit(node)
            return
        self.visit(node.test)
        for body, on_postgresql in ((node.body, branch), (node.orelse, not branch)):
            before = self.postgresql
            self.postgresql = before and on_postgresql
            for statement in body:
                self.visit(statement)
            self.postgresql = before

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
            op = self._op_call(method, node)
        elif owner in self.batches:
            op = self._batch_call(self.batches[owner], method, node)
        else:
            op = None
        if op is not None:
            self.operations.append((op, self.postgresql))
        self.generic_visit(node)

    def _op_call(self, method: str, node: ast.Call) -> ops.MigrateOperation | None:
        arg = self._argument
        if method == "create_table":
            columns = [self._value(a) for a in node.args[1:]]
            return ops.CreateTableOp(
                arg(node, 0, "table_name"),
                [c for c in columns if c is not _UNREADABLE],
                **self._keywords(node, "schema"),
            )
        if method == "drop_table":
            return ops.DropTableOp(arg(node, 0, "table_name"))
        if method == "rename_table":
            return ops.RenameTableOp(
                arg(node, 0, "old_table_name"), arg(node, 1, "new_table_name")
            )
        if method == "create_index":
            return self._create_index(node, arg(node, 1, "table_name"), 2)
        if method == "drop_index":
            return ops.DropIndexOp(
                arg(node, 0, "index_name"),
                table_name=arg(node, 1, "table_name"),
                **self._keywords(node, "postgresql_concurrently"),
            )
        if method == "create_foreign_key":
            return ops.CreateForeignKeyOp(
                arg(node, 0, "constraint_name"),
                arg(node, 1, "source_table"),
                arg(node, 2, "referent_table"),
                arg(node, 3, "local_cols") or [],
                arg(node, 4, "remote_cols") or [],
            )
        if method in {"create_unique_constraint", "create_check_constraint"}:
            return self._constraint(
                method, arg(node, 0, "constraint_name"), arg(node, 1, "table_name")
            )
        if method == "sync_enum_values":  # alembic-postgresql-enum's (enums.py)
            return SyncEnumValuesOp(
                arg(node, 0, "enum_schema"),
                arg(node, 1, "enum_name"),
                [],
                list(arg(node, 2, "new_values") or []),
                [],
            )
        return self._column_call(method, node, arg(node, 0, "table_name"), 1)

    def _batch_call(
        self, table: str, method: str, node: ast.Call
    ) -> ops.MigrateOperation | None:
        arg = self._argument
        if method == "create_index":
            return self._create_index(node, table, 1)
        if method == "drop_index":
            return ops.DropIndexOp(
                arg(node, 0, "index_name"),
                table_name=table,
                **self._keywords(node, "postgresql_concurrently"),
            )
        if method == "create_foreign_key":
            return ops.CreateForeignKeyOp(
                arg(node, 0, "constraint_name"),
                table,
                arg(node, 1, "referent_table"),
                arg(node, 2, "local_cols") or [],
                arg(node, 3, "remote_cols") or [],
            )
        if method in {"create_unique_constraint", "create_check_constraint"}:
            return self._constraint(method, arg(node, 0, "constraint_name"), table)
        return self._column_call(method, node, table, 0)

    def _column_call(
        self, method: str, node: ast.Call, table: str, position: int
    ) -> ops.MigrateOperation | None:
        if method == "add_column":
            column = self._argument(node, position, "column")
            if column is _UNREADABLE or column is None:
                return None
            return ops.AddColumnOp(table, column)
        name = self._argument(node, position, "column_name")
        if method == "drop_column":
            return ops.DropColumnOp(table, name)
        if method != "alter_column":
            return None
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        return ops.AlterColumnOp(
            table,
            name,
            existing_type=self._value(keywords.get("existing_type")),
            modify_type=self._value(keywords.get("type_")),
            modify_nullable=self._value(keywords.get("nullable")),
            modify_name=self._value(keywords.get("new_column_name")),
            modify_server_default=(
                self._value(keywords["server_default"])
                if "server_default" in keywords
                else False
            ),
            existing_server_default=self._value(
                keywords.get("existing_server_default")
            ),
            existing_nullable=self._value(keywords.get("existing_nullable")),
            **self._keywords(node, "postgresql_using"),
        )

    def _create_index(
        self, node: ast.Call, table: str, columns_position: int
    ) -> ops.MigrateOperation:
        return ops.CreateIndexOp(
            self._argument(node, 0, "index_name"),
            table,
            self._argument(node, columns_position, "columns") or [],
            **self._keywords(
                node,
                "postgresql_concurrently",
                # A partial index's condition, for each engine given one.
                *[k.arg for k in node.keywords if k.arg and k.arg.endswith("_where")],
            ),
        )

    def _constraint(self, method: str, name: Any, table: str) -> ops.MigrateOperation:
        if method == "create_unique_constraint":
            return ops.CreateUniqueConstraintOp(name, table, [])
        return ops.CreateCheckConstraintOp(name, table, "")

    def _keywords(self, node: ast.Call, *names: str) -> dict[str, Any]:
        return {
            k.arg: self._value(k.value)
            for k in node.keywords
            if k.arg in names and self._value(k.value) is not None
        }

    def _argument(self, node: ast.Call, position: int, keyword: str) -> Any:
        value = self._value(_argument(node, position, keyword))
        return "?" if value is _UNREADABLE else value

    def _value(self, node: ast.expr | None) -> Any:
        if node is None:
            return None
        if (  # op.f("name") or batch_op.f("name"): the name, as given
            isinstance(node, ast.Call)
            and _method(node)[1] == "f"
            and _method(node)[0] in {"op", *self.batches}
            and node.args
        ):
            return self._value(node.args[0])
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


def _postgresql_test(test: ast.expr) -> bool | None:
    """For `if <...>.dialect.name == "postgresql":` (or !=), whether the body is
    the PostgreSQL branch; None for any other test."""
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq | ast.NotEq)
        and isinstance(test.left, ast.Attribute)
        and test.left.attr == "name"
        and isinstance(test.left.value, ast.Attribute)
        and test.left.value.attr == "dialect"
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "postgresql"
    ):
        return isinstance(test.ops[0], ast.Eq)
    return None


def _method(call: ast.Call) -> tuple[str, str]:
    if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
        return call.func.value.id, call.func.attr
    return "", ""


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)
