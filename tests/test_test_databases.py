"""The generated suite keeps its test databases between runs (like Django's
--keepdb): the next run applies only new revisions, and anything that could
make the kept schema wrong builds it from empty instead. Its migration tests
keep their proofs the same way: a local run walks only the revisions no
earlier run proved with the same files; CI walks them all."""

from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import add_model, run

INITIAL_REVISION = "3f1a9c2b7d40"  # the template's; the one before "add teams"
PYTEST = ("python", "-m", "pytest", "-q", "-p", "no:randomly")
TEAM = '''\
"""A model added after the first run."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class Team(Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
'''
ROWS = '''\
"""Realistic values for the migration tests."""

from typing import Any

import sqlalchemy as sa


def sample_row(table: sa.Table, n: int) -> dict[str, Any] | None:
    if table.name == "users" and "email" in table.c:
        return {"email": f"user{n}@example.org"}
    return None
'''
CRASH = """\
import os


def test_the_run_stops_here(session_app: object) -> None:
    os._exit(3)  # no teardown: as a killed or crashed run
"""


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def engine_url(
    request: pytest.FixtureRequest, make_database: Callable[[str], str]
) -> str | None:
    """None for the generated suite's own SQLite file, else a server database."""
    return None if request.param == "sqlite" else make_database(request.param)


def test_the_next_run_reuses_the_test_databases_and_rebuilds_when_it_must(
    engine_url: str | None, fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    # A developer's run (CI, which the template's own CI sets, proves it all).
    env = {"CI": ""}
    if engine_url:
        env["TEST_DATABASE_URL"] = engine_url

    def suite(*args: str, check: bool = True, **extra: str) -> str:
        """A file of the generated suite (any test that uses the database sets it
        up), with pytest's cache, where the records live; the summary's lines
        about them."""
        args = args or ("tests/test_app.py",)
        result = run(
            project, project_env, *PYTEST, *args, check=check, **{**env, **extra}
        )
        lines = [
            line
            for line in result.stdout.splitlines()
            if line.startswith(("Test databases:", "Migration walk:"))
        ]
        return "\n".join(lines) if lines else result.stdout + result.stderr

    assert suite() == "Test databases: built from empty (no record of a finished run)."
    assert suite() == "Test databases: reused the last run's, no new revisions."

    # A new revision: applied to the kept databases, and tested.
    run(project, project_env, "flask", "db", "upgrade")
    add_model(project, "team", "Team", TEAM)
    run(project, project_env, "flask", "db", "migrate", "-m", "add teams")
    (revision,) = (project / "migrations" / "versions").glob("*add_teams.py")
    assert suite() == (
        "Test databases: reused the last run's, the new revisions applied."
    )
    # The whole suite passes on them; its migration tests walk every revision
    # (none is proven yet), then, on the next run, only the newest.
    reused = "Test databases: reused the last run's, no new revisions."
    assert suite("tests") == f"{reused}\nMigration walk: 2 of 2 revisions."
    proven = "Migration walk: 1 of 2 revisions; the others were proven by earlier runs."
    assert suite("tests") == f"{reused}\n{proven}"
    # In CI, and with --fresh-db, every revision.
    assert suite("tests", CI="true") == f"{reused}\nMigration walk: 2 of 2 revisions."
    # What the tests trust changed: tests/migration_rows.py gives new rows.
    (project / "tests" / "migration_rows.py").write_text(ROWS)
    assert suite("tests") == f"{reused}\nMigration walk: 2 of 2 revisions."
    assert suite("tests") == f"{reused}\n{proven}"

    # An edited revision: its old form built the kept schema.
    revision.write_text(revision.read_text() + "\n# reviewed\n")
    revision_id = revision.name.split("-")[1].split("_")[0]
    assert suite() == (
        f"Test databases: built from empty (revision {revision_id} changed)."
    )
    # The machinery that runs the revisions changed (a template update).
    env_py = project / "migrations" / "env.py"
    env_py.write_text(env_py.read_text() + "\n# updated\n")
    assert suite() == (
        "Test databases: built from empty"
        " (migrations/env.py or migration_tools/ changed)."
    )
    # The databases moved since the last run (someone migrated them by hand).
    run(
        project,
        project_env,
        "flask",
        "db",
        "downgrade",
        INITIAL_REVISION,
        DATABASE_URL=engine_url
        or f"sqlite:///{project / '.pytest_cache' / 'd' / 'test-db' / 'test.db'}",
    )
    assert suite() == (
        "Test databases: built from empty"
        " (the databases are not where the last run left them)."
    )
    # A run that stopped half-way recorded nothing.
    crash = project / "tests" / "test_crash.py"
    crash.write_text(CRASH)
    assert "Test databases" not in suite("tests/test_crash.py", check=False)
    crash.unlink()
    assert suite() == "Test databases: built from empty (no record of a finished run)."
    # Opting out.
    assert (
        suite("tests/test_app.py", "--fresh-db")
        == "Test databases: built from empty (--fresh-db)."
    )
    assert suite("tests/test_app.py", "-p", "no:cacheprovider") == (
        "Test databases: built from empty (pytest's cache is off)."
    )
