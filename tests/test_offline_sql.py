"""`flask db upgrade --sql`: SQL for a DBA. On PostgreSQL and MariaDB it is
written without connecting, with one transaction per migration where the
engine has transactional DDL (as online), and applying it with the server's
own client (psql, mariadb) gives the database that `flask db upgrade` gives.
Where a client is not installed, the SQL goes through the Python driver
instead, unchanged. On SQLite the command explains in one paragraph why it
cannot, instead of Alembic's batch-mode error."""

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pymysql
import pytest
from pymysql.constants import CLIENT
from sqlalchemy.engine import make_url

from .helpers import run
from .test_deploy import NEWER_REVISION, alembic_versions
from .test_existing_databases import execute


def apply_sql(url: str, script: Path, client: bool) -> str:
    """Run ``script`` on the database at ``url`` with the server's command-line
    client if installed (and ``client``), else the Python driver; say which."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        psql = shutil.which("psql") if client else None
        if psql:
            subprocess.run(
                [psql, "--quiet", "-v", "ON_ERROR_STOP=1", "-f", script, url],
                check=True,
                capture_output=True,
            )
            return "psql"
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(script.read_text().encode())  # no parameters
        return "psycopg"
    program = (shutil.which("mariadb") or shutil.which("mysql")) if client else None
    if program:
        with script.open() as stdin:
            subprocess.run(
                [
                    program,
                    f"--host={parsed.host}",
                    f"--port={parsed.port or 3306}",
                    f"--user={parsed.username}",
                    parsed.database or "",
                ],
                stdin=stdin,
                check=True,
                capture_output=True,
                env={**os.environ, "MYSQL_PWD": parsed.password or ""},
            )
        return Path(program).name
    connection = pymysql.connect(
        host=parsed.host,
        port=parsed.port or 3306,
        user=parsed.username,
        password=parsed.password or "",
        database=parsed.database,
        client_flag=CLIENT.MULTI_STATEMENTS,
        autocommit=True,  # as the client: the DML (alembic_version) commits
    )
    with connection, connection.cursor() as cursor:
        cursor.execute(script.read_text())
        while cursor.nextset():
            pass
    return "pymysql"


@pytest.mark.parametrize("client", [True, False], ids=["client", "driver"])
def test_offline_sql_applied_with_the_servers_client_matches_online(
    fresh_project: Callable[..., Path],
    project_env: Path,
    database: str,
    tmp_path: Path,
    client: bool,
) -> None:
    project = fresh_project()
    versions = project / "migrations" / "versions"
    (versions / "2026_11_22_000000-4b2e8d1c9a07_add_nickname.py").write_text(
        NEWER_REVISION
    )
    backend = make_url(database).get_backend_name()

    result = run(
        project, project_env, "flask", "db", "upgrade", "--sql", DATABASE_URL=database
    )
    sql = result.stdout
    assert "CREATE TABLE users" in sql
    assert "ALTER TABLE users ADD COLUMN nickname VARCHAR(50)" in sql
    if backend == "postgresql":
        # One transaction per migration, as online: a failing one stops there.
        assert sql.count("BEGIN;") == sql.count("COMMIT;") == 2
    else:
        assert "BEGIN;" not in sql  # MariaDB commits each DDL statement itself
    assert execute(database, "SELECT 1") == [(1,)]  # nothing was written yet
    script = tmp_path / "upgrade.sql"
    script.write_text(sql)

    tool = apply_sql(database, script, client)
    if not client:
        assert tool in {"psycopg", "pymysql"}
    assert alembic_versions(database) == [("4b2e8d1c9a07",)]
    execute(
        database, "INSERT INTO users (email, name, nickname) VALUES ('a@b.c', 'A', 'a')"
    )
    # The online commands accept what the SQL built: nothing left to upgrade,
    # and the downgrades find every constraint by its name.
    status = run(project, project_env, "flask", "db-status", DATABASE_URL=database)
    assert "at the newest revision" in status.stdout
    run(project, project_env, "flask", "db", "downgrade", "base", DATABASE_URL=database)
    assert alembic_versions(database) == []


def test_offline_sql_on_sqlite_explains_why_it_cannot(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project(database="sqlite")
    result = run(project, project_env, "flask", "db", "upgrade", "--sql", check=False)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "`flask db upgrade --sql` cannot write SQL for SQLite" in output
    assert "batch mode" in output
    assert "Traceback" not in output
    assert "copy_from" not in output  # Alembic's own advice, for its API
