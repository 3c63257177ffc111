"""Changes that the rows in a table forbid are refused the same way on SQLite,
PostgreSQL and MariaDB, before the database sees them, naming what is in the
way (flask_safe_migrations.guards): a unique constraint or index over
duplicates, a CHECK that rows violate, a string column narrowed below its
longest value. The same changes on rows that allow them go through. Alembic's
operations run in-process, through the guards that migrations/env.py
installs, on a table with rows. And the migration tests' sample rows share
values where the schema allows it, so that such a change fails there too."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.util import CommandError
from flask_safe_migrations import guards

from ..servers import SERVERS
from .generated_suite import NAME, USER, WALK, migration_tests, project_in

pytest_plugins = ["pytester"]


def batch(change: Callable[[Any], None]) -> Callable[[Operations], None]:
    """As autogenerate writes them: in a batch block (SQLite alters no
    constraint without one)."""

    def run(op: Operations) -> None:
        with op.batch_alter_table("people") as batch_op:
            change(batch_op)

    return run


CHANGES: dict[str, Callable[[Operations], None]] = {
    "unique constraint": batch(
        lambda b: b.create_unique_constraint("uq_people_email", ["email"])
    ),
    "unique index": batch(
        lambda b: b.create_index("ix_people_email", ["email"], unique=True)
    ),
    "check": batch(lambda b: b.create_check_constraint("ck_people_age", "age >= 0")),
    "narrow": batch(
        lambda b: b.alter_column(
            "email", type_=sa.String(5), existing_type=sa.String(100)
        )
    ),
    # On the servers, a unique constraint also as a plain op.
    "plain unique": lambda op: op.create_unique_constraint(
        "uq_people_email", "people", ["email"]
    ),
}
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


def attempt(url: str, change: str, rows: list[dict[str, Any]]) -> str:
    """ "done", or the refusal's message."""
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


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def url(
    request: pytest.FixtureRequest,
    make_database: Callable[[str], str],
    tmp_path: Path,
) -> str:
    """An empty database of each engine, with the driver the tests use."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'guards.db'}"
    driver = SERVERS[request.param].driver
    return make_database(request.param).replace(":", f"+{driver}:", 1)


def test_changes_the_rows_forbid_are_refused_alike_on_every_engine(url: str) -> None:
    guards.install()  # as migrations/env.py does
    sqlite = url.startswith("sqlite")
    plain = () if sqlite else ("plain unique",)
    for change in ("unique constraint", "unique index", *plain):
        refused = attempt(url, change, BAD)
        assert (
            "rows repeat 'ann@example.com' (3 rows); 'bob@example.com' (2 rows)"
            in refused
        ), (change, refused)
        assert "None" not in refused  # NULLs repeat freely
        assert attempt(url, change, GOOD) == "done"
    assert "1 row(s) violate it (age >= 0)" in attempt(url, "check", BAD)
    assert attempt(url, "check", GOOD) == "done"
    assert "5 row(s) hold longer values (up to 15)" in attempt(url, "narrow", BAD)
    assert attempt(url, "narrow", GOOD) == "done"


UNIQUE_NAMES = USER.replace(
    NAME, "    name: Mapped[str] = mapped_column(sa.String(100), unique=True)\n"
)


def test_a_unique_constraint_over_values_the_sample_rows_share_fails_the_walk(
    pytester: pytest.Pytester, database_url: str, environment: pytest.MonkeyPatch
) -> None:
    """The migration tests' rows share the values of the columns no unique
    constraint covers, as production's rows may (flask_safe_migrations
    .sample_rows): a revision that makes users.name unique fails the walk with
    the guard's message naming the duplicates, instead of in production."""
    with project_in(pytester) as project:
        project.autogenerate(UNIQUE_NAMES, "unique names")
        if not database_url.startswith("sqlite"):  # else the plugin's SQLite files
            environment.setenv("TEST_DATABASE_URL", database_url)
        returncode, report = migration_tests(pytester, project, WALK)
    assert returncode != 0, report
    flat = " ".join(report.split())
    assert (
        "Cannot add the unique constraint uq_users_name on users (name): rows"
        " repeat 'sample " in flat
    ), report
