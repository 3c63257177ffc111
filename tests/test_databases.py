"""A rendered project on each production engine's server: it installs its
driver, and `flask db upgrade/check` work through DATABASE_URL. Its own test
suite passes there too: test_project.py's test_generated_test_suite_passes
runs it on each server (defaults: PostgreSQL, mysql: MariaDB). What the
library does on the servers (rows kept, concurrent deploys, failing
migrations, unreachable URLs) is proven on a MiniProject:
tests/library/test_databases.py."""

import subprocess
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from .helpers import run
from .servers import Server, engine

Render = Callable[[str], Path]

# The answer set whose production engine each server is.
PROJECT = {"postgresql": "defaults", "mysql": "mysql"}


def inspector_of(url: str) -> tuple[sa.Engine, sa.Inspector]:
    bind = engine(url)
    return bind, sa.inspect(bind)


def tables(url: str) -> set[str]:
    bind, inspector = inspector_of(url)
    try:
        return set(inspector.get_table_names())
    finally:
        bind.dispose()


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    bind = engine(url)
    try:
        with bind.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]
    finally:
        bind.dispose()


def execute(url: str, sql: str, rows: list[dict[str, object]]) -> None:
    bind = engine(url)
    try:
        with bind.begin() as connection:
            connection.execute(sa.text(sql), rows)
    finally:
        bind.dispose()


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def test_flask_db_upgrade_and_check_on_the_server(
    server: Server, database: str, render: Render, project_env: Path
) -> None:
    """The project installs its driver, and the first commands work on the
    server through DATABASE_URL. (Its revision's downgrade runs on the server
    in test_project.py's test_generated_test_suite_passes: the generated
    migration tests take every revision down and up again.)"""
    project = render(PROJECT[server.engine])

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        return run(project, project_env, "flask", *args, DATABASE_URL=database)

    flask("db", "upgrade")
    assert tables(database) == {"alembic_version", "users"}
    assert "No new upgrade operations detected" in output(flask("db", "check"))
    bind, inspector = inspector_of(database)
    try:
        assert [c["name"] for c in inspector.get_unique_constraints("users")] == [
            "uq_users_email"
        ]
        if server.engine == "postgresql":  # MySQL names every primary key PRIMARY
            assert inspector.get_pk_constraint("users")["name"] == "pk_users"
    finally:
        bind.dispose()
