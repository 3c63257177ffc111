"""Compare server defaults the way the engines mean them, not as they spell them.

Each engine reports a default in its own words: `now()` is `CURRENT_TIMESTAMP`
on SQLite and `current_timestamp()` on MariaDB, `false` is `0` on MariaDB,
`'a'` is `'a'::character varying` on PostgreSQL, `0` is `0.00` in a MariaDB
NUMERIC(10, 2). Alembic compares the words, so `flask db check` never settles
on some engines. compare_server_default() (wired in env.py) compares meanings,
and still reports a default that really differs.
"""

import logging
from typing import Any

import sqlalchemy as sa
from alembic.operations import MigrationScript, ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.sql import elements

from .rendering import FALSE, NOW, TODAY, TRUE, _string_literal, normalise, number

log = logging.getLogger("alembic.autogenerate.compare")


def compare_server_default(
    context: MigrationContext,
    inspected_column: sa.Column[Any],
    metadata_column: sa.Column[Any],
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool:
    """Alembic's compare_server_default hook: True when the defaults differ."""
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
