"""The user's migration_settings.py decides what migrations compare, without an
edit to any file the template owns: a table another tool owns is left alone,
and models in a PostgreSQL schema other than public migrate cleanly."""

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from .helpers import add_model, run, run_tests
from .servers import engine
from .test_update import commit_all, git


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def changed_files(project: Path) -> set[str]:
    status = git(project, "status", "--porcelain", "--untracked-files=all")
    return {line[3:] for line in status.splitlines()}


def test_ignored_tables_are_left_to_the_tool_that_owns_them(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Generated")
    run(project, project_env, "flask", "db", "upgrade")
    # A job queue creates its own tables in the app's database.
    with sqlite3.connect(project / "instance" / "my_flask_app.db") as connection:
        connection.execute("CREATE TABLE celery_taskmeta (id INTEGER PRIMARY KEY)")
    result = run(project, project_env, "flask", "db", "check", check=False)
    assert result.returncode != 0
    assert "remove_table" in output(result)  # autogenerate would drop it

    settings = project / "my_flask_app" / "migration_settings.py"
    settings.write_text(
        settings.read_text().replace(
            "IGNORE_TABLES: set[str] = set()", 'IGNORE_TABLES = {"celery_*"}'
        )
    )

    run(project, project_env, "flask", "db", "check")
    result = run(project, project_env, "flask", "db", "migrate", "-m", "nothing")
    assert "No changes in the models" in output(result)
    assert changed_files(project) == {"my_flask_app/migration_settings.py"}
    run(project, project_env, "ruff", "check", ".")
    run(project, project_env, "mypy", "--no-incremental", "--cache-dir=/dev/null")

    # A project updated from a template without the settings module: defaults.
    settings.unlink()
    result = run(project, project_env, "flask", "db", "check", check=False)
    assert result.returncode != 0
    assert "remove_table" in output(result)
    assert "Traceback" not in output(result)


INVOICE_MODEL = '''\
"""An invoice, kept in the billing schema."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class Invoice(Model):
    __tablename__ = "invoices"
    __table_args__ = {"schema": "billing"}

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
'''


def test_a_model_in_a_postgresql_schema_migrates_cleanly(
    fresh_project: Callable[..., Path],
    project_env: Path,
    make_database: Callable[[str], str],
) -> None:
    """The user's revision creates the schema; `flask db check` is clean after
    it, and tables in a schema no model names are left alone."""
    url = make_database("postgresql")
    project = fresh_project()
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Generated")
    database = {"DATABASE_URL": url}
    bind = engine(url)
    try:
        with bind.begin() as connection:  # another tool's schema and table
            connection.execute(sa.text("CREATE SCHEMA reports"))
            connection.execute(sa.text("CREATE TABLE reports.daily (id int)"))
        run(project, project_env, "flask", "db", "upgrade", **database)
        add_model(project, "invoice", "Invoice", INVOICE_MODEL)
        versions = project / "migrations" / "versions"
        before = set(versions.glob("*.py"))

        run(
            project, project_env, "flask", "db", "migrate", "-m", "invoices", **database
        )

        (revision,) = set(versions.glob("*.py")) - before
        script = revision.read_text()
        assert 'schema="billing"' in script
        assert "reports" not in script
        # The user's part: create the schema first, drop it last (downgrade()
        # ends the file).
        script = script.replace(
            "def upgrade() -> None:\n",
            "def upgrade() -> None:\n"
            '    op.execute(sa.schema.CreateSchema("billing", if_not_exists=True))\n',
        )
        script = script.rstrip("\n") + (
            '\n    op.execute(sa.schema.DropSchema("billing"))\n'
        )
        revision.write_text(script)
        run(project, project_env, "flask", "db", "upgrade", **database)
        run(project, project_env, "flask", "db", "check", **database)
        run(project, project_env, "flask", "db", "downgrade", **database)
        with bind.connect() as connection:
            schemas = sa.inspect(connection).get_schema_names()
        assert "billing" not in schemas
        assert "reports" in schemas
        run(project, project_env, "flask", "db", "upgrade", **database)
        run(project, project_env, "flask", "db", "check", **database)
        with bind.connect() as connection:
            assert sa.inspect(connection).get_table_names(schema="billing") == [
                "invoices"
            ]
            assert sa.inspect(connection).get_table_names(schema="reports") == ["daily"]
        result = run_tests(
            project, project_env, TEST_DATABASE_URL=make_database("postgresql")
        )
        assert " passed" in result.stdout
        assert not {
            name
            for name in changed_files(project)
            if not name.startswith(("migrations/versions/", "my_flask_app/models/"))
        }, "only the user's files changed"
    finally:
        bind.dispose()
