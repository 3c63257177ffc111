"""The generated suite keeps its test databases between runs (like Django's
--keepdb): the next run applies only new revisions, and anything that could
make the kept schema wrong builds it from empty instead."""

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
    env = {"TEST_DATABASE_URL": engine_url} if engine_url else {}

    def suite(*args: str, check: bool = True) -> str:
        """A file of the generated suite (any test that uses the database sets it
        up), with pytest's cache, where the record lives."""
        args = args or ("tests/test_app.py",)
        result = run(project, project_env, *PYTEST, *args, check=check, **env)
        lines = [
            line for line in result.stdout.splitlines() if "Test databases:" in line
        ]
        return lines[-1] if lines else result.stdout + result.stderr

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
    # The whole suite passes on them (its migration tests walk every revision).
    assert suite("tests") == "Test databases: reused the last run's, no new revisions."

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
    assert suite("--fresh-db") == "Test databases: built from empty (--fresh-db)."
    assert suite("-p", "no:cacheprovider") == (
        "Test databases: built from empty (pytest's cache is off)."
    )
