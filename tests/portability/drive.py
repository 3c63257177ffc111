"""Drive a MiniProject's migrations on every engine, in-process
(tests/library/test_portability.py).

``autogenerate()`` writes a revision on the SQLite development database and
applies the hand edits the workflow asks for ("acknowledge": uncomment
ACKNOWLEDGED_DATA_LOSS; "rename": apply the review's rename hint).
``apply()``, on one database: counts the rows in every table, upgrades to head
(no row may be lost), puts rows in every table, runs `flask db check`,
downgrades one revision (or to "down") and upgrades again (no row lost again),
checks again.
"""

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from flask_safe_migrations import comparison
from flask_sqlalchemy import SQLAlchemy

from ..library.miniproject import MiniProject

ROWS = 3  # added to every table at each step


@contextmanager
def app_on(project: MiniProject, url: str) -> Iterator[tuple[Flask, SQLAlchemy]]:
    """An app of ``project`` on ``url``, in its app context; its connections
    closed after (the servers' databases are dropped at the test's end)."""
    app = project.app(SQLALCHEMY_DATABASE_URI=url)
    db: SQLAlchemy = app.extensions["sqlalchemy"]
    try:
        with app.app_context(), warnings.catch_warnings():
            # Cycles (accounts <-> teams) make SQLAlchemy warn when it sorts
            # the tables.
            warnings.simplefilter("ignore", sa.exc.SAWarning)
            yield app, db
    finally:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


def autogenerate(project: MiniProject, message: str, **plan: Any) -> dict[str, Any]:
    with app_on(project, project.development_url) as (app, _):
        project.upgrade(app)
        path = project.migrate(app, message)
    assert path is not None, f"no change in the models for {message!r}"
    text = path.read_text()
    edits: list[str] = []
    # With the rename applied, nothing is lost: only the rename is left to
    # acknowledge (it breaks the release still running during a deploy).
    finding = r'"rename .*"' if plan.get("rename") else r'".*"'
    if plan.get("rename"):
        text, edits = apply_rename_hint(text), [*edits, "rename hint"]
    acknowledged = re.sub(rf"(?m)^    # ({finding},)$", r"    \1", text)
    if acknowledged != text:
        text, edits = acknowledged, [*edits, "acknowledge"]
    path.write_text(text)
    return {"path": str(path), "edits": edits, "text": text}


def apply_rename_hint(text: str) -> str:
    """Replace each batch block that holds a LIKELY RENAME comment with the
    code the comment gives, as it says (upgrade() and downgrade() both)."""
    lines = text.splitlines()
    hints = [i for i, line in enumerate(lines) if "# LIKELY RENAME in " in line]
    assert hints, "no rename hint in the revision"
    for comment in reversed(hints):
        start = comment - 1
        assert lines[start].lstrip().startswith("with op.batch_alter_table("), start
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        end = start + 1
        while end < len(lines) and (
            not lines[end].strip() or lines[end].startswith(indent + " ")
        ):
            end += 1
        code = [
            indent + line.split("#     ", 1)[1]
            for line in lines[comment:end]
            if "#     " in line
        ]
        lines[start:end] = [*code, ""]
    return "\n".join(lines) + "\n"


def apply(project: MiniProject, url: str, plan: dict[str, Any]) -> dict[str, Any]:
    with app_on(project, url) as (app, db):
        engine = db.engine.dialect.name
        if "defaults_differ" in plan:  # the model is a step ahead of the database
            differ = sorted(changed_defaults(db))
            assert differ == sorted(plan["defaults_differ"]), (engine, differ)
        before = counts(db)
        project.upgrade(app)
        after = counts(db)
        for table in set(before) & set(after):
            assert after[table] == before[table], (engine, table, before, after)
        lost = set(before) - set(after) - set(plan.get("drops", []))
        assert not lost, (engine, "tables gone", lost)
        fill(db, ROWS)
        filled = counts(db)
        project.check(app)
        down = plan.get("down", "-1")
        project.downgrade(app, down)
        project.upgrade(app)
        again = counts(db)
        if down == "base":  # every table went: fill them again
            assert not any(again.values()), (engine, again)
            fill(db, ROWS)
            again = counts(db)
            assert all(again.values()), (engine, again)
        else:
            for table in set(filled) & set(again) - set(plan.get("creates", [])):
                assert again[table] == filled[table], (engine, table, filled, again)
        project.check(app)
        return {
            "engine": engine,
            "before": sum(before.values()),
            "after": sum(after.values()),
            "filled": sum(filled.values()),
            "again": sum(again.values()),
            "tables": len(filled),
        }


def changed_defaults(db: SQLAlchemy) -> list[tuple[str, str]]:
    """The columns whose server default differs between the models and the
    database, compared as the library compares them."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                **comparison.options({}),
                "target_metadata": db.metadata,
            },
        )
        diffs = compare_metadata(context, db.metadata)
    flat = [d for diff in diffs for d in (diff if isinstance(diff, list) else [diff])]
    return [(d[2], d[3]) for d in flat if d[0] == "modify_default"]


def counts(db: SQLAlchemy) -> dict[str, int]:
    inspector = sa.inspect(db.engine)
    with db.engine.connect() as connection:
        return {
            name: connection.execute(
                sa.select(sa.func.count()).select_from(sa.table(name))
            ).scalar_one()
            for name in inspector.get_table_names()
            if name != "alembic_version"
        }


def fill(db: SQLAlchemy, rows: int) -> None:
    """Put ``rows`` rows in every table of the models, leaving the columns with
    a server default to the database."""
    with db.engine.begin() as connection:
        for table in db.metadata.sorted_tables:
            existing = connection.execute(
                sa.select(sa.func.count()).select_from(table)
            ).scalar_one()
            connection.execute(
                table.insert(),
                [row(connection, table, existing + n) for n in range(rows)],
            )


def row(connection: sa.Connection, table: sa.Table, k: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.foreign_keys:
            target = next(iter(column.foreign_keys)).column
            ids = connection.execute(sa.select(target).order_by(target)).scalars().all()
            values[column.name] = ids[k % len(ids)] if ids else None
        elif column is table.autoincrement_column:
            continue
        elif column.server_default is None or column.unique:
            values[column.name] = value(column, k)
    return values


def value(column: sa.Column[Any], k: int) -> Any:
    type_ = column.type
    if isinstance(type_, sa.Enum):
        return type_.enums[k % len(type_.enums)]
    if isinstance(type_, sa.Boolean):
        return k % 2 == 0
    if isinstance(type_, sa.String):
        return f"{column.name[:3]}{k}"[: type_.length or 100]
    if isinstance(type_, sa.Integer):
        return k % 5 + 1
    if isinstance(type_, sa.Numeric):
        return Decimal(k) + Decimal("0.25")
    if isinstance(type_, sa.DateTime):
        return datetime(2026, 1, 1, 12, 0, k % 60)
    if isinstance(type_, sa.Date):
        return date(2026, 1, 1 + k % 28)
    if isinstance(type_, sa.JSON):
        return {"k": k, "tags": ["a", "b"]}
    raise AssertionError(f"no test value for {column} of type {type_!r}")
