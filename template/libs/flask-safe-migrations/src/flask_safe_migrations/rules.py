"""The review's rules: what each one matches, what it says, and the safe form.

One rule per risk, in the habit of squawk and strong_migrations. A rule looks
at one Alembic operation and yields the finding in the words a revision's
ACKNOWLEDGED list uses ("create index ix_users_name on users without
CONCURRENTLY"); `fix` writes the safe form for the revision's comments. The
rules are the list RULES at the end; review.py applies them, at `flask db
migrate` and in the migration tests, and migrations/README explains each.
"""

import copy
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.operations import ops
from alembic_postgresql_enum.operations.sync_enum_values import SyncEnumValuesOp
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.schema import AddConstraint
from sqlalchemy.sql.naming import conv

# The production engines a project may declare (project.py). The rules about
# locks apply to PostgreSQL only: there they have a safe form (CONCURRENTLY,
# NOT VALID), and InnoDB builds indexes online without one.
ENGINES = ("postgresql", "mysql", "sqlite")

DATA_LOSS = "DATA LOSS"
FAILS_WITH_ROWS = "FAILS WITH ROWS"
NOT_PORTABLE = "NOT PORTABLE"
BLOCKS_TRAFFIC = "BLOCKS TRAFFIC"
BREAKS_RUNNING_RELEASE = "BREAKS THE RUNNING RELEASE"

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]
# The engines every revision runs on: the SQLite development database and the
# production engine.
_ENGINES = {
    "sqlite": sqlite.dialect(),
    "postgresql": _PG,
    "mysql": mysql.dialect(),
}
_ON_POSTGRESQL = 'if op.get_context().dialect.name == "postgresql":'
_AUTOCOMMIT = "with op.get_context().autocommit_block():"
# PostgreSQL functions whose default makes ADD COLUMN rewrite the whole table.
_VOLATILE = ("random(", "gen_random_uuid(", "uuid_generate_v", "clock_timestamp(")


@dataclass(frozen=True)
class Where:
    """Where an operation runs."""

    new_tables: frozenset[str] = frozenset()  # created by the same revision: empty
    dropped_tables: frozenset[str] = frozenset()
    postgresql: bool = True  # False inside a branch for the other engines
    # The engine the project runs in production (project.py): every revision
    # runs there and on SQLite, the development database.
    production_engine: str = "postgresql"
    in_downgrade: bool = False  # in downgrade(): undoing the upgrade

    @property
    def runs_on(self) -> list[str]:
        return sorted({"sqlite", self.production_engine})


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    why: str  # what goes wrong, in a sentence or two
    match: Callable[[Any, Where], Iterator[str]]  # the finding(s) for an operation
    fix: Callable[[Any], str]  # the safe form: code, or words
    postgresql_only: bool = False  # a lock rule: PostgreSQL projects only
    # The squawk rules that flag the same operation in its SQL: acknowledging
    # the finding in a revision also tells squawk (lint_sql.py) it is meant.
    squawk: tuple[str, ...] = ()
    # What to do when the operation is in a downgrade(), which runs on the rows
    # written since the upgrade. A rule without it is not run on downgrades:
    # dropping what the upgrade added, building its index again or narrowing
    # back a widened column is what a downgrade is for (the data guards still
    # refuse a narrowing the rows do not fit).
    downgrade: Callable[[Any], str] | None = None


# What a downgrade finding's text starts with, in ACKNOWLEDGED too: an entry
# without it is about upgrade(), as it always was.
DOWNGRADE = "downgrade: "


@dataclass(frozen=True)
class Finding:
    rule: Rule
    text: str  # what ACKNOWLEDGED lists to accept it
    op: ops.MigrateOperation = field(compare=False)
    in_downgrade: bool = False

    @property
    def kind(self) -> str:
        return self.rule.kind

    def fix(self) -> str:
        if self.in_downgrade and self.rule.downgrade is not None:
            return self.rule.downgrade(self.op)
        return self.rule.fix(self.op)


def findings(op: ops.MigrateOperation, where: Where) -> list[Finding]:
    """What the rules find in ``op``."""
    found = []
    for rule in RULES:
        if rule.postgresql_only and not (
            where.postgresql and where.production_engine == "postgresql"
        ):
            continue
        if where.in_downgrade and rule.downgrade is None:
            continue
        prefix = DOWNGRADE if where.in_downgrade else ""
        found += [
            Finding(rule, prefix + text, op, where.in_downgrade)
            for text in rule.match(op, where)
        ]
    return found


# --- Types ------------------------------------------------------------------


def narrows(old: Any, new: Any) -> bool:
    """Whether converting a column from type ``old`` to ``new`` can lose data."""
    if not _readable(old, new):
        return True  # a type we cannot read: assume the worst
    if isinstance(old, sa.Enum) and isinstance(new, sa.Enum):
        return not set(new.enums) >= set(old.enums)  # a value taken out
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


def needs_using(old: Any, new: Any) -> bool:
    """Whether PostgreSQL refuses to convert ``old`` to ``new`` without USING.

    It converts by assignment casts only: any type to a string, between numbers,
    between dates and timestamps; anything else needs an explicit USING.
    """
    if not _readable(old, new):
        return False  # unknown: the data-loss rule already asks for a look
    if (
        isinstance(old, sa.Enum)
        and isinstance(new, sa.Enum)
        and not (old.name and new.name)
    ):
        return False  # MySQL's inline ENUM, reflected without a name: no type
    if _native_enum(new):
        return not _native_enum(old) or old.name != new.name
    if isinstance(new, sa.String):
        return False
    for family in ((sa.Integer, sa.Numeric), (sa.DateTime, sa.Date)):
        if isinstance(old, family) and isinstance(new, family):
            return False
    return old._type_affinity is not new._type_affinity


def rewrites(old: Any, new: Any) -> bool:
    """Whether PostgreSQL rewrites the table (under an exclusive lock) to change
    a column from ``old`` to ``new``; widening a string or a decimal does not."""
    if not _readable(old, new):
        return True
    if _native_enum(old) or _native_enum(new):
        return True
    if isinstance(old, sa.String) and isinstance(new, sa.String):
        return narrows(old, new)
    if type(old) is sa.Numeric and type(new) is sa.Numeric:
        return old.scale != new.scale or _smaller(old.precision, new.precision)
    if isinstance(old, sa.DateTime) and isinstance(new, sa.DateTime):
        return bool(old.timezone) != bool(new.timezone)
    return type(old) is not type(new) or repr(old) != repr(new)


def _readable(*types: Any) -> bool:
    return all(isinstance(type_, sa.types.TypeEngine) for type_ in types)


def _native_enum(type_: Any) -> bool:
    return isinstance(type_, sa.Enum) and bool(type_.native_enum)


def _integer_size(type_: sa.Integer) -> int:
    if isinstance(type_, sa.BigInteger):
        return 8
    return 2 if isinstance(type_, sa.SmallInteger) else 4


def _smaller(old: int | None, new: int | None) -> bool:
    return new is not None and (old is None or new < old)


def describe(type_: Any) -> str:
    return repr(type_) if type_ is not None else "an unknown type"


def _default_sql(default: Any) -> str:
    arg = getattr(default, "arg", default)
    if isinstance(arg, str):
        return arg
    if isinstance(arg, sa.sql.ClauseElement):
        try:
            return str(arg.compile(dialect=_PG))
        except sa.exc.SQLAlchemyError:
            return ""
    return ""


# --- Rendering the safe forms -----------------------------------------------


def code(*operations: ops.MigrateOperation, batch: bool = True) -> str:
    """The Python code of ``operations``, as autogenerate writes it."""
    rendered = render_python_code(
        ops.UpgradeOps(ops=list(operations)), render_as_batch=batch
    )
    lines = [line for line in rendered.splitlines() if line.strip()]
    return textwrap.dedent("\n".join(line for line in lines if "###" not in line))


def _indent(text: str) -> str:
    return textwrap.indent(text, "    ")


def _sql(clause: Any) -> str:
    return str(clause.compile(dialect=_PG))


def _quote(name: Any) -> str:
    return str(_PG.identifier_preparer.quote(str(name)))


def _pg_or_else(postgresql_lines: list[str], other: Any) -> str:
    """Code that runs ``postgresql_lines`` on PostgreSQL, ``other`` elsewhere."""
    if isinstance(other, ops.AddConstraintOp):
        other = copy.copy(other)
        # The name exactly as the SQL above spells it (batch_op.f), so that the
        # naming convention does not prefix it on the other engines only.
        other.constraint_name = conv(str(other.constraint_name))
    return "\n".join(
        [
            _ON_POSTGRESQL,
            *[f"    {line}" for line in postgresql_lines],
            "else:",
            _indent(code(ops.ModifyTableOps(_table(other), [other]))),
        ]
    )


def _table(op: Any) -> str:
    return str(getattr(op, "table_name", None) or op.source_table)


def _not_valid_then_validate(table: str, name: str, add_sql: str) -> list[str]:
    """Add a constraint NOT VALID (a brief lock), then VALIDATE it in its own
    transaction, which checks the rows without blocking writes."""
    validate = f"ALTER TABLE {_quote(table)} VALIDATE CONSTRAINT {_quote(name)}"
    return [
        f"op.execute({add_sql + ' NOT VALID'!r})",
        _AUTOCOMMIT,
        f"    op.execute({validate!r})",
    ]


# --- The rules ----------------------------------------------------------------


def _drop_table(op: Any, where: Where) -> Iterator[str]:
    if isinstance(op, ops.DropTableOp):
        yield f"drop table {op.table_name}"


def _drop_column(op: Any, where: Where) -> Iterator[str]:
    if isinstance(op, ops.DropColumnOp):
        yield f"drop column {op.table_name}.{op.column_name}"


def _narrowing_type(op: Any, where: Where) -> Iterator[str]:
    if (
        isinstance(op, ops.AlterColumnOp)
        and op.modify_type is not None
        and narrows(op.existing_type, op.modify_type)
    ):
        yield (
            f"change type of {op.table_name}.{op.column_name} from"
            f" {describe(op.existing_type)} to {describe(op.modify_type)}"
        )


def _dropped_default(op: Any, where: Where) -> Iterator[str]:
    if (
        isinstance(op, ops.AlterColumnOp)
        and op.modify_server_default is None
        and op.existing_server_default
        and op.existing_nullable is False
    ):
        yield f"drop the default of NOT NULL column {op.table_name}.{op.column_name}"


def _not_null_without_default(op: Any, where: Where) -> Iterator[str]:
    if isinstance(op, ops.AddColumnOp) and op.table_name not in where.new_tables:
        column = op.column
        if (
            isinstance(column, sa.Column)
            and column.nullable is False
            and column.server_default is None
            and column.computed is None
            and column.identity is None
        ):
            yield (
                f"add NOT NULL column {op.table_name}.{column.name}"
                " without a server default"
            )


def _cast_without_using(op: Any, where: Where) -> Iterator[str]:
    if (
        isinstance(op, ops.AlterColumnOp)
        and where.postgresql
        and op.modify_type is not None
        and "postgresql_using" not in op.kw
        and needs_using(op.existing_type, op.modify_type)
    ):
        yield (
            f"change type of {op.table_name}.{op.column_name} to"
            f" {describe(op.modify_type)} without postgresql_using"
        )


def _using_fix(op: Any) -> str:
    target = op.modify_type.compile(dialect=_PG)
    using = f"{_quote(op.column_name)}::{target}"
    change = ops.AlterColumnOp(
        op.table_name,
        op.column_name,
        existing_type=op.existing_type,
        existing_nullable=op.existing_nullable,
        existing_server_default=op.existing_server_default,
        modify_type=op.modify_type,
    )
    # Alembic renders no dialect keyword of alter_column: add it to the call.
    rendered = code(ops.ModifyTableOps(op.table_name, [change]))
    last = rendered.splitlines()[-1]
    indent = last[: len(last) - len(last.lstrip())]
    return f"{rendered[:-1]},\n{indent}postgresql_using={using!r})"


def _typed_columns(op: Any) -> list[tuple[str, sa.Column[Any]]]:
    """The columns whose type ``op`` sets, with their table's name."""
    if isinstance(op, ops.CreateTableOp):
        return [(op.table_name, c) for c in op.columns if isinstance(c, sa.Column)]
    if isinstance(op, ops.AddColumnOp):
        return [(op.table_name, op.column)]
    if isinstance(op, ops.AlterColumnOp) and op.modify_type is not None:
        return [(op.table_name, sa.Column(op.column_name, op.modify_type))]
    return []


def _enum_values_set(op: Any, where: Where) -> Iterator[str]:
    """alembic-postgresql-enum's sync_enum_values (enums.py): a value taken
    out of a native ENUM type (or renamed)."""
    if isinstance(op, SyncEnumValuesOp):
        values = ", ".join(repr(value) for value in op.new_values)
        yield f"set the values of ENUM type {op.name} to {values}"


def _engine_only_types(op: Any, where: Where) -> Iterator[str]:
    """A type that one of the engines the revision runs on cannot create (an
    ARRAY or INET on SQLite, a String without a length on MySQL): SQLAlchemy
    refuses to compile it for that engine, and the upgrade fails there."""
    for table, column in _typed_columns(op):
        lacking = [name for name in where.runs_on if not _compiles(column.type, name)]
        if lacking:
            yield (
                f"type {column.type!r} of {table}.{column.name} has no form on"
                f" {' or '.join(lacking)}"
            )


def _engine_only_defaults(op: Any, where: Where) -> Iterator[str]:
    """A server default that one of the engines cannot compile (a sequence's
    next_value() on SQLite, which has no sequences): the upgrade fails there."""
    columns = _typed_columns(op)
    if isinstance(op, ops.AlterColumnOp) and isinstance(
        op.modify_server_default, sa.DefaultClause
    ):
        column = sa.Column(op.column_name, sa.Integer)
        column.server_default = op.modify_server_default
        columns = [(op.table_name, column)]
    for table, column in columns:
        arg = getattr(column.server_default, "arg", None)
        if not isinstance(arg, sa.sql.ClauseElement):
            continue  # a value, FetchedValue, Computed, Identity: Alembic's
        lacking = [name for name in where.runs_on if not _compiles(arg, name)]
        if lacking:
            what = (
                f"{arg.sequence.name}.next_value()"
                if isinstance(arg, sa.sql.functions.next_value)
                else _default_sql(arg)
            )
            yield (
                f"server default {what} of {table}.{column.name} has no form on"
                f" {' or '.join(lacking)}"
            )


def _engine_only_schemas(op: Any, where: Where) -> Iterator[str]:
    """A table in a schema of its own: SQLite has none, and a MySQL schema is
    another database (made apart from the project's, with its own grants)."""
    if isinstance(op, ops.CreateTableOp) and op.schema:
        lacking = [name for name in where.runs_on if name != "postgresql"]
        if lacking:
            yield (
                f"table {op.table_name} in schema {op.schema} has no form on"
                f" {' or '.join(lacking)}"
            )


def _engine_only_indexes(op: Any, where: Where) -> Iterator[str]:
    """A partial index (``<engine>_where``) on an engine not given its condition
    (MySQL/MariaDB have none: the index covers every row, and a unique one
    refuses what the condition allows); an expression index on MySQL (MariaDB
    has none: the upgrade fails)."""
    if not isinstance(op, ops.CreateIndexOp):
        return
    conditions = {
        key.split("_", 1)[0] for key, value in op.kw.items() if key.endswith("_where")
    }
    if conditions:
        lacking = [name for name in where.runs_on if name not in conditions]
        if lacking:
            yield (
                f"partial index {op.index_name} on {op.table_name} has no form on"
                f" {' or '.join(lacking)}"
            )
    # A column is a name or a column; anything else (a function, text, or the
    # literal_column() a revision spells an expression with) is an expression.
    expressions = [
        c
        for c in op.columns
        if not isinstance(c, str)
        and not (isinstance(c, sa.ColumnClause) and not c.is_literal)
    ]
    if expressions and "mysql" in where.runs_on:
        yield (
            f"expression index {op.index_name} on {op.table_name} has no form on mysql"
        )


def _generated_not_null(op: Any, where: Where) -> Iterator[str]:
    """MariaDB refuses NOT NULL on a generated column (a syntax error), which
    PostgreSQL, MySQL and SQLite accept; a MySQL project may run on MariaDB."""
    if where.production_engine != "mysql":
        return
    for table, column in _typed_columns(op):
        if column.computed is not None and not column.nullable:
            yield f"NOT NULL generated column {table}.{column.name}"


def _compiles(element: sa.types.TypeEngine[Any] | Any, engine: str) -> bool:
    """Whether SQLAlchemy compiles a type or SQL expression for ``engine``."""
    try:
        element.compile(dialect=_ENGINES[engine])
    except (sa.exc.CompileError, NotImplementedError):
        return False
    return True


def _index(op: Any, where: Where) -> Iterator[str]:
    if (
        isinstance(op, ops.CreateIndexOp)
        and op.table_name not in where.new_tables
        and not op.kw.get("postgresql_concurrently")
    ):
        yield f"create index {op.index_name} on {op.table_name} without CONCURRENTLY"


def _index_fix(op: Any) -> str:
    concurrently = ops.CreateIndexOp(
        op.index_name,
        op.table_name,
        op.columns,
        schema=op.schema,
        unique=op.unique,
        **{**op.kw, "postgresql_concurrently": True},
    )
    return f"{_AUTOCOMMIT}\n{_indent(code(concurrently, batch=False))}"


def _drop_index(op: Any, where: Where) -> Iterator[str]:
    if (
        isinstance(op, ops.DropIndexOp)
        and op.table_name not in where.new_tables | where.dropped_tables
        and not op.kw.get("postgresql_concurrently")
    ):
        yield f"drop index {op.index_name} on {op.table_name} without CONCURRENTLY"


def _drop_index_fix(op: Any) -> str:
    concurrently = ops.DropIndexOp(
        op.index_name,
        table_name=op.table_name,
        schema=op.schema,
        **{**op.kw, "postgresql_concurrently": True},
    )
    return f"{_AUTOCOMMIT}\n{_indent(code(concurrently, batch=False))}"


def _foreign_key(op: Any, where: Where) -> Iterator[str]:
    if (
        isinstance(op, ops.CreateForeignKeyOp)
        and op.source_table not in where.new_tables
    ):
        yield (
            f"add foreign key {op.constraint_name} on {op.source_table}"
            " without NOT VALID"
        )


def _check(op: Any, where: Where) -> Iterator[str]:
    if (
        isinstance(op, ops.CreateCheckConstraintOp)
        and op.table_name not in where.new_tables
    ):
        yield f"add CHECK {op.constraint_name} on {op.table_name} without NOT VALID"


def _not_valid_fix(op: Any) -> str:
    add_sql = _sql(AddConstraint(op.to_constraint()))
    lines = _not_valid_then_validate(_table(op), op.constraint_name, add_sql)
    return _pg_or_else(lines, op)


def _set_not_null(op: Any, where: Where) -> Iterator[str]:
    if (
        isinstance(op, ops.AlterColumnOp)
        and op.modify_nullable is False
        and op.table_name not in where.new_tables
    ):
        yield f"set NOT NULL on {op.table_name}.{op.column_name}"


def _set_not_null_fix(op: Any) -> str:
    table, column = _quote(op.table_name), _quote(op.column_name)
    name = f"{op.table_name}_{op.column_name}_not_null"
    check = _quote(name)
    add_sql = f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL)"
    lines = [
        *_not_valid_then_validate(op.table_name, name, add_sql),
        f"op.execute({f'ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL'!r})",
        f"op.execute({f'ALTER TABLE {table} DROP CONSTRAINT {check}'!r})",
    ]
    return _pg_or_else(lines, op)


def _unique(op: Any, where: Where) -> Iterator[str]:
    if (
        isinstance(op, ops.CreateUniqueConstraintOp)
        and op.table_name not in where.new_tables
    ):
        yield f"add unique constraint {op.constraint_name} on {op.table_name}"


def _unique_fix(op: Any) -> str:
    name = str(op.constraint_name)
    index = ops.CreateIndexOp(
        name, op.table_name, op.columns, unique=True, postgresql_concurrently=True
    )
    attach = (
        f"ALTER TABLE {_quote(op.table_name)} ADD CONSTRAINT {_quote(name)}"
        f" UNIQUE USING INDEX {_quote(name)}"
    )
    lines = [
        _AUTOCOMMIT,
        _indent(code(index, batch=False)),
        f"op.execute({attach!r})",
    ]
    return _pg_or_else(lines, op)


def _rewriting_type(op: Any, where: Where) -> Iterator[str]:
    if (
        isinstance(op, ops.AlterColumnOp)
        and op.modify_type is not None
        and op.table_name not in where.new_tables
        and rewrites(op.existing_type, op.modify_type)
    ):
        yield (
            f"change type of {op.table_name}.{op.column_name} to"
            f" {describe(op.modify_type)} rewrites the table"
        )


def _volatile_default(op: Any, where: Where) -> Iterator[str]:
    if isinstance(op, ops.AddColumnOp) and op.table_name not in where.new_tables:
        default = _default_sql(op.column.server_default).lower()
        if any(function in default for function in _VOLATILE):
            yield (
                f"add column {op.table_name}.{op.column.name} with the volatile"
                f" default {default}"
            )


def _rename(op: Any, where: Where) -> Iterator[str]:
    if isinstance(op, ops.AlterColumnOp) and op.modify_name is not None:
        yield (
            f"rename column {op.table_name}.{op.column_name} to"
            f" {op.table_name}.{op.modify_name}"
        )
    elif isinstance(op, ops.RenameTableOp):
        yield f"rename table {op.table_name} to {op.new_table_name}"


def _readd_not_null(op: Any) -> str:
    return (
        f"The downgrade re-adds {op.table_name}.{op.column.name} NOT NULL with no"
        " server default: on a table with rows it cannot run. In downgrade(), give"
        " it a server_default, or add it nullable, fill it with"
        " flask_safe_migrations.backfill(), then set NOT NULL."
        " If the values cannot be restored, acknowledge this finding: the"
        " migration tests then downgrade this revision on empty tables."
    )


def _words(text: str) -> Callable[[Any], str]:
    return lambda op: text


_EXPAND_CONTRACT = (
    " The release still running during a rolling deploy still uses it: first"
    " ship code that no longer does, then drop it in a later deploy"
    ' (migrations/README, "Expand and contract").'
)

RULES: list[Rule] = [
    Rule(
        "drop-table",
        DATA_LOSS,
        "Every row of the table is gone." + _EXPAND_CONTRACT,
        _drop_table,
        _words("If it was renamed: op.rename_table(old, new) keeps the rows."),
        squawk=("ban-drop-table",),
    ),
    Rule(
        "drop-column",
        DATA_LOSS,
        "Every value of the column is gone." + _EXPAND_CONTRACT,
        _drop_column,
        _words("If it was renamed: alter_column(..., new_column_name=...)."),
        squawk=("ban-drop-column",),
    ),
    Rule(
        "narrowing-type",
        DATA_LOSS,
        "Values that do not fit the new type are cut or refused.",
        _narrowing_type,
        _words("Check the longest or largest value first; widen rather than narrow."),
        squawk=("changing-column-type",),
    ),
    Rule(
        "dropped-default",
        DATA_LOSS,
        "Inserts that relied on the default fail, the running release's included.",
        _dropped_default,
        _words("Keep the server_default in the model."),
        squawk=("ban-drop-default",),
    ),
    Rule(
        "not-null-without-default",
        FAILS_WITH_ROWS,
        "The existing rows get no value: PostgreSQL and SQLite refuse it, and"
        " MySQL/MariaDB would fill 0 or '' (the migration refuses it on every"
        " engine). The release still running does not write the column, so its"
        " inserts fail too.",
        _not_null_without_default,
        _words(
            "Give it a server_default in the model, or add it nullable, fill it in"
            " batches with flask_safe_migrations.backfill() and make it NOT NULL"
            ' in a later revision (migrations/README, "Adding a NOT NULL column").'
        ),
        squawk=("adding-required-field",),
        downgrade=_readd_not_null,
    ),
    Rule(
        "cast-without-using",
        FAILS_WITH_ROWS,
        "PostgreSQL cannot convert the existing values without a USING"
        " expression, and refuses the change once the table has rows.",
        _cast_without_using,
        _using_fix,
        squawk=("changing-column-type",),
        downgrade=_using_fix,
    ),
    Rule(
        "enum-value-removed",
        FAILS_WITH_ROWS,
        "PostgreSQL cannot take a value out of an ENUM type: the type is made"
        " anew and every column of it cast, which rewrites the tables under a"
        " lock that blocks reads and writes, and fails if a row holds a value"
        " the new type lacks.",
        _enum_values_set,
        _words(
            "Move the rows off a removed value first, in the revision"
            ' (op.execute("UPDATE ...")), and list a renamed value in'
            ' enum_values_to_rename=[("old", "new")]; or keep the value in the'
            " Python enum."
        ),
        postgresql_only=True,
    ),
    Rule(
        "engine-only-type",
        NOT_PORTABLE,
        "A revision runs on the SQLite development database and on the"
        " production engine: a type one of them cannot create fails that"
        " engine's `flask db upgrade`.",
        _engine_only_types,
        _words(
            "Use a type every engine has (sa.JSON for a list, sa.String(n) with a"
            " length), or give the column a form per engine:"
            ' sa.JSON().with_variant(postgresql.ARRAY(sa.Integer()), "postgresql").'
        ),
    ),
    Rule(
        "engine-only-default",
        NOT_PORTABLE,
        "A revision runs on the SQLite development database and on the"
        " production engine: a server default one of them cannot compile (a"
        " sequence on SQLite) fails that engine's `flask db upgrade`.",
        _engine_only_defaults,
        _words(
            "Number the rows with the primary key (or sa.Identity()), which"
            " every engine has, or compute the value in the app (default=...)."
            " A sequence's next_value() runs on PostgreSQL and MariaDB only."
        ),
    ),
    Rule(
        "engine-only-schema",
        NOT_PORTABLE,
        "SQLite has no schemas (`flask db upgrade` fails there: unknown"
        " database), and on MySQL/MariaDB a schema is another database,"
        " which the app's user must be allowed to create and use.",
        _engine_only_schemas,
        _words(
            "Leave schema= out and name the tables with a prefix"
            " (billing_invoices), or give them a database of their own through"
            " a bind (SQLALCHEMY_BINDS and __bind_key__)."
        ),
    ),
    Rule(
        "engine-only-index",
        NOT_PORTABLE,
        "MySQL/MariaDB have no partial indexes: the index covers every row"
        " there (a unique one refuses rows its condition allows); SQLite needs"
        " the condition as sqlite_where. MariaDB has no expression indexes:"
        " `flask db upgrade` fails there.",
        _engine_only_indexes,
        _words(
            "Give each engine its condition (postgresql_where= and"
            " sqlite_where=). Where an engine has none, or for an expression,"
            ' index a generated column: sa.Computed("lower(email)"), or'
            ' sa.Computed("CASE WHEN live THEN code END") for a unique partial'
            " index (NULLs never collide)."
        ),
    ),
    Rule(
        "generated-not-null",
        NOT_PORTABLE,
        "MariaDB refuses NOT NULL on a generated (Computed) column: `flask db"
        " upgrade` fails there with a syntax error.",
        _generated_not_null,
        _words(
            "Declare the column nullable in the model (Mapped[int | None], or"
            " nullable=True) and run `flask db migrate` again: its expression"
            " decides whether it is ever NULL."
        ),
    ),
    Rule(
        "index-without-concurrently",
        BLOCKS_TRAFFIC,
        "CREATE INDEX blocks every write to the table while it builds.",
        _index,
        _index_fix,
        postgresql_only=True,
        squawk=("require-concurrent-index-creation",),
    ),
    Rule(
        "drop-index-without-concurrently",
        BLOCKS_TRAFFIC,
        "DROP INDEX takes an exclusive lock, and waits for (and queues every"
        " query behind) the longest open transaction on the table.",
        _drop_index,
        _drop_index_fix,
        postgresql_only=True,
        squawk=("require-concurrent-index-deletion",),
    ),
    Rule(
        "foreign-key-without-not-valid",
        BLOCKS_TRAFFIC,
        "Adding a foreign key checks every row while writes to both tables wait.",
        _foreign_key,
        _not_valid_fix,
        postgresql_only=True,
        squawk=("adding-foreign-key-constraint", "constraint-missing-not-valid"),
    ),
    Rule(
        "check-without-not-valid",
        BLOCKS_TRAFFIC,
        "Adding a CHECK reads every row under a lock that blocks reads and writes.",
        _check,
        _not_valid_fix,
        postgresql_only=True,
        squawk=("constraint-missing-not-valid",),
    ),
    Rule(
        "set-not-null",
        BLOCKS_TRAFFIC,
        "SET NOT NULL reads every row under a lock that blocks reads and writes,"
        " and fails if a row holds NULL (fill those first).",
        _set_not_null,
        _set_not_null_fix,
        postgresql_only=True,
        squawk=("adding-not-nullable-field",),
    ),
    Rule(
        "unique-constraint",
        BLOCKS_TRAFFIC,
        "Adding a unique constraint builds its index while writes wait.",
        _unique,
        _unique_fix,
        postgresql_only=True,
        squawk=("disallowed-unique-constraint", "constraint-missing-not-valid"),
    ),
    Rule(
        "type-rewrites-table",
        BLOCKS_TRAFFIC,
        "The type change rewrites the whole table under a lock that blocks reads"
        " and writes.",
        _rewriting_type,
        _words(
            "On a big table: add a column of the new type, fill it in batches"
            " with flask_safe_migrations.backfill(), switch the code to it, then"
            " drop the old one"
            ' (migrations/README, "Expand and contract").'
        ),
        postgresql_only=True,
        squawk=("changing-column-type",),
    ),
    Rule(
        "volatile-default",
        BLOCKS_TRAFFIC,
        "A volatile default is computed for every row: the table is rewritten"
        " under a lock that blocks reads and writes.",
        _volatile_default,
        _words(
            "Add the column without a default, set the default in a second"
            " alter_column (it applies to new rows), then fill the old rows in"
            " batches with flask_safe_migrations.backfill()."
        ),
        postgresql_only=True,
        squawk=("adding-field-with-default",),
    ),
    Rule(
        "rename",
        BREAKS_RUNNING_RELEASE,
        "The release still running during a rolling deploy uses the old name and"
        " fails until it is replaced.",
        _rename,
        _words(
            "Add the new column (or table), write to both, copy the old data"
            " (a column: in batches, with flask_safe_migrations.backfill()),"
            ' switch the reads, then drop the old one (migrations/README, "Expand and'
            ' contract"); or accept errors during the deploy.'
        ),
        squawk=("renaming-column", "renaming-table"),
    ),
]
