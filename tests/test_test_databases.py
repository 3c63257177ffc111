"""The generated suite keeps its test databases between runs (like Django's
--keepdb): the next run applies only new revisions, and anything that could
make the kept schema wrong builds it from empty instead. Its migration tests
keep their proofs the same way: a local run walks only the revisions no
earlier run proved with the same files; CI walks them all.

The plugin runs on a MiniProject with pytester (library/generated_suite.py),
in-process, on each engine; test_project.py runs a rendered project's own suite."""

import pytest

from .library.generated_suite import (
    INITIAL_REVISION,
    MIGRATION_TESTS,
    NO_OTHER_PLUGINS,
    TEAM,
    USER,
    app_on,
    dispose,
    plugin_project,
    run_in_process,
    summary,
)

pytest_plugins = ["pytester"]

TEAMS_REVISION = "7ea70000add5"
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


def test_the_next_run_reuses_the_test_databases_and_rebuilds_when_it_must(
    engine_url: str | None,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with plugin_project(pytester, monkeypatch, test_database_url=engine_url) as project:

        def suite(*args: str) -> str:
            """A test that uses the database (it sets them up), or ``args``,
            with pytest's cache, where the records live; the summary's lines
            about them."""
            return summary(
                run_in_process(pytester, project, *(args or ("tests/test_app.py",)))
            )

        assert suite() == (
            "Test databases: built from empty (no record of a finished run)."
        )
        assert suite() == "Test databases: reused the last run's, no new revisions."

        # A new revision: applied to the kept databases, and tested.
        revision = project.autogenerate(USER + TEAM, "add teams", TEAMS_REVISION)
        assert suite() == (
            "Test databases: reused the last run's, the new revisions applied."
        )
        # The whole suite passes on them; its migration tests walk every
        # revision (none is proven yet), then, on the next run, only the newest.
        reused = "Test databases: reused the last run's, no new revisions."
        all_walked = "Migration walk: 2 of 2 revisions."
        proven = (
            "Migration walk: 1 of 2 revisions; the others were proven by earlier runs."
        )
        passed = run_in_process(pytester, project, "tests")
        passed.assert_outcomes(passed=len(MIGRATION_TESTS) + 1)  # and test_app.py's
        assert summary(passed) == f"{reused}\n{all_walked}"
        assert suite("tests") == f"{reused}\n{proven}"
        # In CI, and with --fresh-db, every revision.
        with monkeypatch.context() as ci:
            ci.setenv("CI", "true")
            assert suite("tests") == f"{reused}\n{all_walked}"
        assert suite("tests", "--fresh-db") == (
            f"Test databases: built from empty (--fresh-db).\n{all_walked}"
        )
        assert suite("tests") == f"{reused}\n{proven}"
        # What the tests trust changed: tests/migration_rows.py gives new rows.
        (pytester.path / "tests" / "migration_rows.py").write_text(ROWS)
        assert suite("tests") == f"{reused}\n{all_walked}"
        assert suite("tests") == f"{reused}\n{proven}"

        # An edited revision: its old form built the kept schema.
        revision.write_text(revision.read_text() + "\n# reviewed\n")
        assert suite() == (
            f"Test databases: built from empty (revision {TEAMS_REVISION} changed)."
        )
        # A revision that built the kept schema is gone (another branch checked
        # out); back, it is a new revision again.
        text = revision.read_text()
        revision.unlink()
        assert suite() == (
            f"Test databases: built from empty (revision {TEAMS_REVISION} is gone)."
        )
        revision.write_text(text)
        assert suite() == (
            "Test databases: reused the last run's, the new revisions applied."
        )
        # The machinery that runs the revisions changed (a template update).
        env_py = project.migrations_dir / "env.py"
        env_py.write_text(env_py.read_text() + "\n# updated\n")
        assert suite() == (
            "Test databases: built from empty"
            " (migrations/env.py or flask-safe-migrations changed)."
        )
        # The databases moved since the last run (someone migrated them by hand).
        test_db = pytester.path / ".pytest_cache" / "d" / "test-db" / "test.db"
        app = app_on(project, engine_url or f"sqlite:///{test_db}")
        project.downgrade(app, INITIAL_REVISION)
        dispose(app)
        assert suite() == (
            "Test databases: built from empty"
            " (the databases are not where the last run left them)."
        )
        # A run that stopped half-way recorded nothing (a process of its own:
        # it ends without teardown).
        crash = pytester.path / "tests" / "test_crash.py"
        crash.write_text(CRASH)
        project.forget_modules()
        crashed = pytester.runpytest_subprocess(
            "-q", *NO_OTHER_PLUGINS, "tests/test_crash.py"
        )
        assert crashed.ret == 3, crashed.outlines + crashed.errlines
        assert "Test databases" not in "\n".join(crashed.outlines)
        crash.unlink()
        assert suite() == (
            "Test databases: built from empty (no record of a finished run)."
        )
        # Opting out.
        assert suite("tests/test_app.py", "--fresh-db") == (
            "Test databases: built from empty (--fresh-db)."
        )
        assert suite("tests/test_app.py", "-p", "no:cacheprovider") == (
            "Test databases: built from empty (pytest's cache is off)."
        )
