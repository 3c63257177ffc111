"""`flask db upgrade --sql`: SQL for a DBA. On PostgreSQL and MariaDB it is
written without connecting, with one transaction per migration where the
engine has transactional DDL (as online), and applying it with the server's
own client (psql, mariadb) gives the database that `flask db upgrade` gives.
Where a client is not installed, the SQL goes through the Python driver
instead, unchanged. On SQLite the command explains in one paragraph why it
cannot, instead of Alembic's batch-mode error.

In-process, on a MiniProject with the template's first revision and a second
one in batch mode; the `flask` command runs through miniproject.flask."""

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from pymysql.constants import CLIENT
from sqlalchemy.engine import make_url

from ..servers import Server, engine
from .generated_suite import INITIAL_REVISION, USER, add_initial_revision
from .miniproject import MiniProject

NEWER = "4b2e8d1c9a07"
NEWER_REVISION = f'''"""add nickname to users"""

import sqlalchemy as sa
from alembic import op

revision = "{NEWER}"
down_revision = "{INITIAL_REVISION}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("nickname", sa.String(50), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("nickname")
'''
NICKNAME = "    nickname: Mapped[str | None] = mapped_column(sa.String(50))\n"


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


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    """Run ``sql`` in a transaction of its own; its rows, if any."""
    bind = engine(url)
    try:
        with bind.begin() as connection:
            result = connection.execute(sa.text(sql))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        bind.dispose()


def tables(url: str) -> list[str]:
    bind = engine(url)
    try:
        return sa.inspect(bind).get_table_names()
    finally:
        bind.dispose()


@pytest.mark.parametrize("client", [True, False], ids=["client", "driver"])
def test_offline_sql_applied_with_the_servers_client_matches_online(
    server: Server,
    database: str,
    make_mini_project: Callable[..., MiniProject],
    tmp_path: Path,
    client: bool,
) -> None:
    project = make_mini_project(
        models=USER.rstrip("\n") + "\n" + NICKNAME,
        database_url=database,
        production_engine=server.engine,
    )
    add_initial_revision(project)
    (project.versions_dir / f"2026_11_22_000000-{NEWER}_add_nickname.py").write_text(
        NEWER_REVISION
    )
    app = project.app()

    result = project.flask(app, "db", "upgrade", "--sql")
    assert result.exit_code == 0, result.output
    sql = result.stdout
    assert "CREATE TABLE users" in sql
    assert "ALTER TABLE users ADD COLUMN nickname VARCHAR(50)" in sql
    if server.engine == "postgresql":
        # One transaction per migration, as online: a failing one stops there.
        assert sql.count("BEGIN;") == sql.count("COMMIT;") == 2
    else:
        assert "BEGIN;" not in sql  # MariaDB commits each DDL statement itself
    assert tables(database) == []  # nothing written yet
    script = tmp_path / "upgrade.sql"
    script.write_text(sql)

    tool = apply_sql(database, script, client)
    if not client:
        assert tool in {"psycopg", "pymysql"}
    assert query(database, "SELECT version_num FROM alembic_version") == [(NEWER,)]
    query(
        database,
        "INSERT INTO users (email, name, nickname) VALUES ('a@b.c', 'A', 'a')",
    )
    # The online commands accept what the SQL built: the models match, nothing
    # left to upgrade, and the downgrades find every constraint by its name.
    project.check(app)
    status = project.flask(app, "db-status")
    assert status.exit_code == 0, status.output
    assert "at the newest revision" in status.output
    downgrade = project.flask(app, "db", "downgrade", "base")
    assert downgrade.exit_code == 0, downgrade.output
    assert query(database, "SELECT version_num FROM alembic_version") == []


def test_offline_sql_on_sqlite_explains_why_it_cannot(
    make_mini_project: Callable[..., MiniProject],
) -> None:
    project = make_mini_project(models=USER, production_engine="sqlite")
    add_initial_revision(project)
    result = project.flask(project.app(), "db", "upgrade", "--sql")
    assert result.exit_code == 1
    output = result.output
    assert "`flask db upgrade --sql` cannot write SQL for SQLite" in output
    assert "batch mode" in output
    assert "Traceback" not in output
    assert "copy_from" not in output  # Alembic's own advice, for its API
