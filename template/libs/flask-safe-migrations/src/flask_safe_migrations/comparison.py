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
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate.api import AutogenContext
from alembic.operations import MigrationScript, ops
from alembic.runtime.plugins import Plugin
from alembic.util import PriorityDispatchResult
from sqlalchemy.sql import elements

from .rendering import FALSE, NOW, TODAY, TRUE, _string_literal, normalise, number

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


Plugin(PLUGIN).add_autogenerate_comparator(
    _compare_server_default, "column", "server_default"
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
