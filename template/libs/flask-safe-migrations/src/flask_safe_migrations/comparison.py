"""Compare server defaults the way the engines mean them, not as they spell them.

Each engine reports a default in its own words: `now()` is `CURRENT_TIMESTAMP`
on SQLite and `current_timestamp()` on MariaDB, `false` is `0` on MariaDB,
`'a'` is `'a'::character varying` on PostgreSQL, `0` is `0.00` in a MariaDB
NUMERIC(10, 2). Alembic compares the words, so `flask db check` never settles
on some engines. This module's autogenerate plugin (enabled by options(), which
env.py passes to context.configure()) compares meanings, and still reports a
default that really differs.

A plugin rather than Alembic's compare_server_default hook: Alembic (1.20)
reads the reflected default's `.arg` before it calls that hook, and a computed
column's reflected default (Computed) has none, so the hook crashes `flask db
migrate` and `check` on any model with a Computed column. The plugin runs after
Alembic's own comparators for Computed and Identity columns, and leaves to
Alembic every default it does not recognise (FetchedValue, Computed, Identity).
"""

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import MigrationScript, ops
from alembic.runtime.plugins import Plugin
from alembic.util import PriorityDispatchResult
from sqlalchemy.sql import elements, functions

from .rendering import (
    FALSE,
    NOW,
    TODAY,
    TRUE,
    _sa,
    _string_literal,
    normalise,
    number,
)

log = logging.getLogger("alembic.autogenerate.compare")


PLUGIN = "flask_migrations.server_defaults"
_ALEMBIC_PLUGINS = ["alembic.autogenerate.*"]  # Alembic's default


def options(configured: Mapping[str, Any]) -> dict[str, Any]:
    """The context.configure() options that turn this comparison on, given the
    ``configured`` ones (their autogenerate_plugins, if any, are kept)."""
    plugins = list(configured.get("autogenerate_plugins") or _ALEMBIC_PLUGINS)
    return {"compare_server_default": True, "autogenerate_plugins": [*plugins, PLUGIN]}


def _compare_server_default(
    autogen_context: AutogenContext,
    alter_column_op: ops.AlterColumnOp,
    schema: str | None,
    table_name: str,
    column_name: str,
    inspected_column: sa.Column[Any],
    metadata_column: sa.Column[Any],
) -> PriorityDispatchResult:
    """The comparator: marks the column changed when the defaults' meanings
    differ. STOP ends the comparison (Alembic's own textual one comes last);
    CONTINUE leaves a default this module does not know to Alembic."""
    inspected = inspected_column.server_default
    declared = metadata_column.server_default
    dialect = autogen_context.dialect
    if (
        isinstance(declared, sa.Identity)
        and inspected is None
        and dialect is not None
        and not dialect.supports_identity_columns
    ):
        # SQLite and MySQL/MariaDB have no identity columns: SQLAlchemy creates
        # the column as autoincrement and reflects no Identity, which Alembic
        # would report as a change at every `flask db check`.
        alter_column_op.modify_server_default = False
        return PriorityDispatchResult.STOP
    if (
        inspected is None
        and isinstance(getattr(declared, "arg", None), functions.next_value)
        and dialect is not None
        and dialect.name == "mysql"
    ):
        # SQLAlchemy reflects no default for MariaDB's DEFAULT nextval(`s`):
        # unknown, which is not a change (comparing would never settle).
        return PriorityDispatchResult.STOP
    if not isinstance(inspected, sa.DefaultClause | None) or not isinstance(
        declared, sa.DefaultClause | None
    ):
        return PriorityDispatchResult.CONTINUE
    if defaults_differ(
        metadata_column,
        _sql(inspected, autogen_context),
        declared,
        _sql(declared, autogen_context),
    ):
        alter_column_op.modify_server_default = declared
        log.info("Detected server default on column %s.%s", table_name, column_name)
    return PriorityDispatchResult.STOP


def _sql(
    default: sa.DefaultClause | None, autogen_context: AutogenContext
) -> str | None:
    """A default's SQL as the database would run it (what Alembic compares)."""
    if default is None:
        return None
    if isinstance(default.arg, str):
        return default.arg
    if isinstance(default.arg, elements.TextClause):
        return default.arg.text
    return str(
        default.arg.compile(
            dialect=autogen_context.dialect, compile_kwargs={"literal_binds": True}
        )
    )


_PLUGIN = Plugin(PLUGIN)
_PLUGIN.add_autogenerate_comparator(_compare_server_default, "column", "server_default")


# --- Schemas and sequences ------------------------------------------------------
#
# Alembic compares tables, not the schemas they are in nor the sequences their
# defaults draw from: a model with schema="billing", or with
# server_default=seq.next_value(), gets a create_table that fails at `flask db
# upgrade` (schema "billing" does not exist; relation "seq" does not exist).
# This comparator, after Alembic's, puts their creation before the tables, and
# their drop after the tables in the downgrade. Only what the models use and
# the database lacks: a sequence the models stop using is left in the database
# (PostgreSQL's SERIAL columns own sequences no model names, which a comparison
# of all sequences would drop).


class CreateSchemaOp(ops.MigrateOperation):
    """CREATE SCHEMA, written as op.execute(sa.schema.CreateSchema(...))."""

    def __init__(self, name: str) -> None:
        self.name = name

    def reverse(self) -> "DropSchemaOp":
        return DropSchemaOp(self.name)


class DropSchemaOp(ops.MigrateOperation):
    def __init__(self, name: str) -> None:
        self.name = name

    def reverse(self) -> CreateSchemaOp:
        return CreateSchemaOp(self.name)


class CreateSequenceOp(ops.MigrateOperation):
    """CREATE SEQUENCE, written as op.execute(sa.schema.CreateSequence(...))."""

    def __init__(self, sequence: sa.Sequence) -> None:
        self.sequence = sequence

    def reverse(self) -> "DropSequenceOp":
        return DropSequenceOp(self.sequence)


class DropSequenceOp(ops.MigrateOperation):
    def __init__(self, sequence: sa.Sequence) -> None:
        self.sequence = sequence

    def reverse(self) -> CreateSequenceOp:
        return CreateSequenceOp(self.sequence)


def _compare_schemas_and_sequences(
    autogen_context: AutogenContext,
    upgrade_ops: ops.UpgradeOps,
    schemas: set[str | None],
) -> PriorityDispatchResult:
    dialect = autogen_context.dialect
    inspector = autogen_context.inspector
    if dialect is None:
        return PriorityDispatchResult.CONTINUE
    tables = [  # the models' tables that autogenerate compares
        table
        for table in autogen_context.sorted_tables
        if autogen_context.run_object_filters(table, table.name, "table", False, None)
    ]
    created: list[ops.MigrateOperation] = []
    # PostgreSQL only: a MySQL schema is another database, and SQLite has none
    # (the review flags both, rules.py's engine-only-schema).
    if dialect.name == "postgresql":
        existing = set(inspector.get_schema_names())
        wanted = dict.fromkeys(t.schema for t in tables if t.schema is not None)
        created += [CreateSchemaOp(name) for name in wanted if name not in existing]
    if dialect.supports_sequences:
        known: dict[str | None, set[str]] = {}
        for sequence in _sequences(tables):
            if sequence.schema not in known:
                known[sequence.schema] = (
                    set(inspector.get_sequence_names(schema=sequence.schema))
                    if sequence.schema is None
                    or sequence.schema in inspector.get_schema_names()
                    else set()
                )
            if sequence.name not in known[sequence.schema]:
                created.append(CreateSequenceOp(sequence))
                log.info("Detected added sequence %r", sequence.name)
    upgrade_ops.ops[:0] = created
    return PriorityDispatchResult.CONTINUE


def _sequences(tables: list[sa.Table]) -> list[sa.Sequence]:
    """The sequences the tables' columns draw from: a server default's
    next_value(), or the column's own Sequence; each once."""
    found: dict[tuple[str | None, str], sa.Sequence] = {}
    for table in tables:
        for column in table.columns:
            default = column.server_default
            arg = getattr(default, "arg", None)
            if isinstance(arg, functions.next_value):
                found.setdefault((arg.sequence.schema, arg.sequence.name), arg.sequence)
            if isinstance(column.default, sa.Sequence) and not column.default.optional:
                sequence = column.default
                found.setdefault((sequence.schema, sequence.name), sequence)
    return list(found.values())


_PLUGIN.add_autogenerate_comparator(_compare_schemas_and_sequences, "schema")


# --- Expression indexes on SQLite -------------------------------------------------
#
# SQLAlchemy cannot reflect SQLite's expression indexes (lower(email)), so
# Alembic leaves them out of the comparison there, with a warning at every
# `flask db migrate` and `check` (an error in the project's tests): a model's
# expression index never gets its create_index, not even with a new table, and
# a project developed on SQLite never creates it in production either. This
# comparator adds the create_index of each such index that SQLite's catalogue
# does not list by name; expression_indexes_compared() hushes the warning
# (env.py). Dropping one stays the user's to write: the database's own
# definition is out of SQLAlchemy's reach, and the downgrade needs it.

_SKIPPED_INDEX = "autogenerate skipping metadata-specified expression-based index"
_UNREFLECTED_INDEX = "Skipped unsupported reflection of expression-based index"


def _compare_expression_indexes(
    autogen_context: AutogenContext,
    modify_ops: ops.ModifyTableOps,
    schema: str | None,
    table_name: str,
    conn_table: sa.Table | None,
    metadata_table: sa.Table | None,
) -> PriorityDispatchResult:
    dialect = autogen_context.dialect
    connection = autogen_context.connection
    if (
        metadata_table is None
        or schema is not None
        or dialect is None
        or dialect.name != "sqlite"
        or connection is None
    ):
        return PriorityDispatchResult.CONTINUE
    existing = set(
        connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
            (table_name,),
        ).scalars()
    )
    for index in sorted(metadata_table.indexes, key=lambda i: str(i.name)):
        if (
            _is_expression_index(index)
            and index.name not in existing
            and autogen_context.run_object_filters(
                index, index.name, "index", False, None
            )
        ):
            modify_ops.ops.append(ops.CreateIndexOp.from_index(index))
            log.info("Detected added expression index %r", index.name)
    return PriorityDispatchResult.CONTINUE


def _is_expression_index(index: sa.Index) -> bool:
    for expression in index.expressions:
        while isinstance(expression, elements.UnaryExpression):  # desc(), ...
            expression = expression.element
        if not isinstance(expression, sa.ColumnClause) or expression.is_literal:
            return True
    return False


_PLUGIN.add_autogenerate_comparator(_compare_expression_indexes, "table", "indexes")


@contextmanager
def expression_indexes_compared() -> Iterator[None]:
    """Hush the warnings that SQLAlchemy does not reflect, and Alembic skips,
    SQLite's expression indexes: the comparator above compares them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _SKIPPED_INDEX, category=UserWarning)
        warnings.filterwarnings("ignore", _UNREFLECTED_INDEX, category=sa.exc.SAWarning)
        yield


# The options of a sequence written with it (those SQLAlchemy's Sequence takes).
_SEQUENCE_OPTIONS = (
    "start",
    "increment",
    "minvalue",
    "maxvalue",
    "nominvalue",
    "nomaxvalue",
    "cycle",
    "cache",
    "order",
)


def _sequence(sequence: sa.Sequence, autogen_context: AutogenContext) -> str:
    arguments = [repr(sequence.name)]
    if sequence.schema is not None:
        arguments.append(f"schema={sequence.schema!r}")
    for name in _SEQUENCE_OPTIONS:
        value = getattr(sequence, name, None)
        if value is not None:
            arguments.append(f"{name}={value!r}")
    return f"{_sa(autogen_context)}Sequence({', '.join(arguments)})"


def _execute(autogen_context: AutogenContext, ddl: str) -> str:
    prefix = autogen_context.opts.get("alembic_module_prefix", "op.")
    return f"{prefix}execute({_sa(autogen_context)}schema.{ddl})"


@renderers.dispatch_for(CreateSchemaOp)
def _render_create_schema(autogen_context: AutogenContext, op: CreateSchemaOp) -> str:
    # IF NOT EXISTS: a database built another way (create_all, a restored
    # dump) may have the schema already.
    return _execute(autogen_context, f"CreateSchema({op.name!r}, if_not_exists=True)")


@renderers.dispatch_for(DropSchemaOp)
def _render_drop_schema(autogen_context: AutogenContext, op: DropSchemaOp) -> str:
    return _execute(autogen_context, f"DropSchema({op.name!r})")


@renderers.dispatch_for(CreateSequenceOp)
def _render_create_sequence(
    autogen_context: AutogenContext, op: CreateSequenceOp
) -> str:
    return _execute(
        autogen_context, f"CreateSequence({_sequence(op.sequence, autogen_context)})"
    )


@renderers.dispatch_for(DropSequenceOp)
def _render_drop_sequence(autogen_context: AutogenContext, op: DropSequenceOp) -> str:
    return _execute(
        autogen_context, f"DropSequence({_sequence(op.sequence, autogen_context)})"
    )


def defaults_differ(
    metadata_column: sa.Column[Any],
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool:
    """True when the defaults differ in meaning."""
    if isinstance(metadata_default, sa.DefaultClause) and isinstance(
        metadata_default.arg, str
    ):  # a value, which the engine quotes: the rendered form has no quotes
        rendered_metadata_default = "'{}'".format(
            metadata_default.arg.replace("'", "''")
        )
    in_model = meaning(rendered_metadata_default, metadata_column.type)
    in_database = meaning(inspected_default, metadata_column.type)
    if in_database is not None and in_model is None:
        table = metadata_column.table.name
        log.warning(
            "%s.%s has the server default %s in the database but none on the"
            " model. Server defaults belong on the model: add"
            " server_default=... to the column to keep it (then `flask db"
            " check` is clean), or autogenerate a revision that drops it.",
            table,
            metadata_column.name,
            inspected_default,
        )
    return in_model != in_database


def meaning(sql: str | None, type_: sa.types.TypeEngine[Any]) -> str | None:
    """What a default's SQL means, in one spelling for every engine."""
    if sql is None:
        return None
    word = normalise(sql)
    base = word.split("(", 1)[0] if word.endswith(")") else word
    if isinstance(type_, sa.Boolean) and word in TRUE | FALSE:
        return "true" if word in TRUE else "false"
    if base == "nextval":
        # A sequence's next value: nextval('s') on PostgreSQL, but reported by
        # MariaDB with its database: nextval(`db`.`s`).
        name = word[len("nextval(") : -1].replace("`", "").replace('"', "")
        return f"next value of {name.strip(chr(39)).split('.')[-1]}"
    if base in NOW:
        return "now"
    if base in TODAY:
        return "today"
    literal = _string_literal(word)
    value = literal if literal is not None else word
    if not isinstance(type_, sa.String) and (amount := number(value)) is not None:
        return f"number {amount.normalize()}"
    return f"text {value}" if literal is not None else f"sql {word}"


class _ShownText(elements.TextClause):
    """SQL text whose repr shows the SQL (`flask db check` prints reprs)."""

    inherit_cache = True

    def __repr__(self) -> str:
        return f"sa.text({self.text!r})"


def readable_defaults(script: MigrationScript) -> None:
    """Make the server defaults in ``script`` print as their SQL, not as
    `<TextClause object at 0x...>`."""
    for container in script.upgrade_ops_list:
        for op in _walk(container):
            if isinstance(op, ops.AlterColumnOp):
                for value in (op.existing_server_default, op.modify_server_default):
                    if (
                        isinstance(value, sa.DefaultClause)
                        and type(value.arg) is elements.TextClause
                    ):
                        value.arg = _ShownText(value.arg.text)


def _walk(container: ops.OpContainer) -> Any:
    for op in container.ops:
        if isinstance(op, ops.OpContainer):
            yield from _walk(op)
        else:
            yield op
