"""The rendered projects work: their own tests pass (each engine once: the
pytest plugin's own behaviour is tested in-process, test_test_databases.py),
and `flask db ...` runs from the project root with nothing exported."""

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import RUNNABLE, UV, run, run_tests
from .test_databases import tables as tables_on

Render = Callable[[str], Path]
# The database each answer set's generated suite runs on (TEST_DATABASE_URL):
# the production engine of the ones that have a server, SQLite for the rest.
SUITE_ENGINES = {
    "defaults": "postgresql",
    "mysql": "mysql",
    "sqlite": "sqlite",
    "no-example-model": "sqlite",
    "custom-names": "sqlite",
}
assert set(SUITE_ENGINES) == set(RUNNABLE)


def tables(database: Path) -> set[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        return {name for (name,) in rows}


def copy_of(render: Render, name: str, tmp_path: Path) -> Path:
    """A copy of the session's rendered project ``name``, for a test that
    writes into it (faster than rendering it again)."""
    return Path(shutil.copytree(render(name), tmp_path / name))


@pytest.mark.parametrize("name", RUNNABLE)
def test_generated_test_suite_passes(
    render: Render,
    project_env: Path,
    make_database: Callable[[str], str],
    name: str,
) -> None:
    """On a server, transaction-per-test isolation included: the tests leave
    the tables the migrations made and no others."""
    engine = SUITE_ENGINES[name]
    url = None if engine == "sqlite" else make_database(engine)
    env = {} if url is None else {"TEST_DATABASE_URL": url}
    result = run_tests(render(name), project_env, **env)
    assert " passed" in result.stdout
    assert "skipped" not in result.stdout
    assert "Test databases: built from empty (pytest's cache is off)." in (
        result.stdout
    )
    if url is not None:
        assert tables_on(url) == {"alembic_version", "users"}


@pytest.mark.parametrize("name", RUNNABLE)
def test_flask_db_commands_work_from_the_project_root(
    render: Render, project_env: Path, tmp_path: Path, name: str
) -> None:
    """upgrade and check: what a developer runs first, as subprocesses with
    FLASK_APP unset (.flaskenv supplies it); on the default answers, downgrade
    base and upgrade again too. (The other answer sets render the same
    revision, whose downgrade their generated suite's walk runs as well.)"""
    project = copy_of(render, name, tmp_path)
    package = next(path.parent.name for path in project.glob("*/extensions.py"))
    database = project / "instance" / f"{package}.db"
    model_tables = {"users"} if name != "no-example-model" else set()

    run(project, project_env, "flask", "db", "upgrade")
    assert tables(database) == {"alembic_version", *model_tables}

    check = run(project, project_env, "flask", "db", "check")
    assert "No new upgrade operations detected" in check.stdout + check.stderr

    if name != "defaults":
        return
    run(project, project_env, "flask", "db", "downgrade", "base")
    assert tables(database) == {"alembic_version"}

    run(project, project_env, "flask", "db", "upgrade")
    assert tables(database) == {"alembic_version", *model_tables}


def test_flask_db_check_fails_when_a_model_has_no_migration(
    render: Render, project_env: Path, tmp_path: Path
) -> None:
    project = copy_of(render, "sqlite", tmp_path)
    run(project, project_env, "flask", "db", "upgrade")
    model = project / "my_flask_app/models/user.py"
    model.write_text(
        model.read_text().replace(
            "    name: Mapped[str] = mapped_column(String(100))\n",
            "    name: Mapped[str] = mapped_column(String(100))\n"
            "    nickname: Mapped[str | None] = mapped_column(String(50))\n",
        )
    )

    check = run(project, project_env, "flask", "db", "check", check=False)

    assert check.returncode != 0
    assert "nickname" in check.stdout + check.stderr


def test_console_script_runs_the_cli_from_any_directory(
    render: Render, project_env: Path, tmp_path: Path
) -> None:
    """The installed `inventory-service` command needs neither FLASK_APP nor the
    project directory; here it migrates a production-style SQLite database."""
    project = render("custom-names")
    python = str(project_env / "bin" / "python")
    run(
        project,
        project_env,
        UV,
        "pip",
        "install",
        "--python",
        python,
        "--no-deps",
        "-e",
        ".",
    )
    database = tmp_path / "inventory.db"

    run(
        tmp_path,
        project_env,
        "inventory-service",
        "db",
        "upgrade",
        SECRET_KEY="a-production-secret-key-5e8b1d4f7a0c3e6b9d2f5a8c1e4b7d0a3f6c9e2b",
        DATABASE_URL=f"sqlite:///{database}",
    )

    assert tables(database) == {"alembic_version", "users"}


def test_bad_database_url_stops_flask_db_with_a_message(
    render: Render, project_env: Path
) -> None:
    result = run(
        render("defaults"),
        project_env,
        "flask",
        "db",
        "current",
        check=False,
        DATABASE_URL="postgres//app:hunter2@db/app",
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    # Issue 11: an unparseable URL is never echoed (its password cannot be
    # found without parsing it); the message says what is wrong instead.
    assert "DATABASE_URL is not a database URL (it has no scheme" in result.stderr
    assert "Percent-encode" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr
