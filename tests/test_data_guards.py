"""Changes that the rows in a table forbid are refused the same way on SQLite,
PostgreSQL and MariaDB, before the database sees them, naming what is in the
way (migration_tools/guards.py): a unique constraint or index over duplicates,
a CHECK that rows violate, a string column narrowed below its longest value.
The same changes on rows that allow them go through. Alembic's operations run
in one process of the project's environment, through the guards env.py
installs, on a table with rows."""

import json
from collections.abc import Callable
from pathlib import Path

from .helpers import run

DRIVE = """
import json
import sys

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.util import CommandError

from my_flask_app.migration_tools import guards

guards.install()
# As autogenerate writes them: in batch blocks (SQLite alters no constraint
# without one), and a unique constraint also as a plain op on the servers.
CHANGES = {
    "unique constraint": lambda op: batch(op, lambda b: b.create_unique_constraint(
        "uq_people_email", ["email"]
    )),
    "unique index": lambda op: batch(op, lambda b: b.create_index(
        "ix_people_email", ["email"], unique=True
    )),
    "check": lambda op: batch(op, lambda b: b.create_check_constraint(
        "ck_people_age", "age >= 0"
    )),
    "narrow": lambda op: batch(op, lambda b: b.alter_column(
        "email", type_=sa.String(5), existing_type=sa.String(100)
    )),
    "plain unique": lambda op: op.create_unique_constraint(
        "uq_people_email", "people", ["email"]
    ),
}


def batch(op, change):
    with op.batch_alter_table("people") as batch_op:
        change(batch_op)


def attempt(url, change, rows):
    engine = sa.create_engine(url)
    people = sa.Table(
        "people",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(100)),
        sa.Column("age", sa.Integer),
    )
    try:
        with engine.begin() as connection:
            people.drop(connection, checkfirst=True)
            people.create(connection)
            connection.execute(people.insert(), rows)
        with engine.begin() as connection:
            CHANGES[change](Operations(MigrationContext.configure(connection)))
        return "done"
    except CommandError as exc:
        return str(exc)
    finally:
        with engine.begin() as connection:
            people.drop(connection, checkfirst=True)
        engine.dispose()


BAD = [
    {"email": "ann@example.com", "age": 1},
    {"email": "ann@example.com", "age": -1},
    {"email": "bob@example.com", "age": 2},
    {"email": "ann@example.com", "age": 3},
    {"email": "bob@example.com", "age": 4},
    {"email": None, "age": 5},
    {"email": None, "age": 6},
]
GOOD = [
    {"email": "a@b", "age": 1},
    {"email": None, "age": None},
    {"email": None, "age": 2},
]
print(json.dumps({
    f"{url.split(':')[0]} {change} {kind}": attempt(url, change, rows)
    for url in sys.argv[1:]
    for change in CHANGES
    if not (url.startswith("sqlite") and change == "plain unique")
    for kind, rows in (("bad", BAD), ("good", GOOD))
}))
"""


def test_changes_the_rows_forbid_are_refused_alike_on_every_engine(
    render: Callable[[str], Path],
    project_env: Path,
    make_database: Callable[[str], str],
    tmp_path: Path,
) -> None:
    urls = [
        f"sqlite:///{tmp_path / 'guards.db'}",
        make_database("postgresql").replace("postgresql:", "postgresql+psycopg:"),
        make_database("mysql").replace("mysql:", "mysql+pymysql:"),
    ]
    result = run(render("defaults"), project_env, "python", "-c", DRIVE, *urls)
    outcomes = json.loads(result.stdout)
    for engine in ("sqlite", "postgresql+psycopg", "mysql+pymysql"):
        plain = () if engine == "sqlite" else ("plain unique",)
        for change in ("unique constraint", "unique index", *plain):
            refused = outcomes[f"{engine} {change} bad"]
            assert (
                "rows repeat 'ann@example.com' (3 rows); 'bob@example.com' (2 rows)"
                in refused
            ), (engine, refused)
            assert "None" not in refused  # NULLs repeat freely
            assert outcomes[f"{engine} {change} good"] == "done"
        assert "1 row(s) violate it (age >= 0)" in outcomes[f"{engine} check bad"]
        assert outcomes[f"{engine} check good"] == "done"
        assert (
            "5 row(s) hold longer values (up to 15)" in outcomes[f"{engine} narrow bad"]
        )
        assert outcomes[f"{engine} narrow good"] == "done"
