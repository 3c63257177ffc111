"""The template's first revision and the generated migration tests, on a
MiniProject (miniproject.py): what a rendered project has, without copier.

- ``add_initial_revision(project)``: the template's own first revision (the
  users table of the example model, INITIAL_REVISION), verbatim, and the model
  it builds (USER).
- ``add_generated_suite(project)`` writes tests/test_migrations.py importing the
  library's migration tests, as the generated one does (minus the two that
  check a copier-rendered layout), and the rendered pyproject.toml's pytest
  settings; ``run_suite(pytester, project, ...)`` runs that suite in-process
  with the library's pytest plugin, as `pytest` in the project would. A test
  asks for ``pytester`` before ``make_mini_project``: pytester puts sys.path
  back as it was when it was set up, after the projects are closed.
"""

import contextlib
from pathlib import Path

# Imported here, so that they stay imported across the in-process runs
# (pytester forgets the modules a run imported): a driver imported again makes
# new exception classes, which SQLAlchemy's dialects loaded before then do
# not recognise (a refused connection would escape as psycopg's own error).
import flask_safe_migrations.testing  # noqa: F401
import psycopg  # noqa: F401
import pymysql  # noqa: F401
import pytest
import sqlalchemy.dialects.mysql.pymysql
import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401

from ..helpers import ROOT
from .miniproject import MiniProject

INITIAL_REVISION = "3f1a9c2b7d40"
_INITIAL = next(
    (ROOT / "template" / "migrations" / "versions").glob(f"*{INITIAL_REVISION}*")
)
# "{% if example_model %}2026_..._create_users_table.py{% endif %}.jinja"
INITIAL_FILE = _INITIAL.name.split("%}")[1].split("{%")[0]

# The template's example model, as the first revision builds it.
USER = """
class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[sa.DateTime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.current_timestamp()
    )
"""

# The generated tests/test_migrations.py's tests that hold on any project.
MIGRATION_TESTS = (
    "test_every_model_module_is_imported",
    "test_every_review_finding_is_acknowledged",
    "test_every_revision_keeps_the_rows_and_downgrades_and_upgrades_again",
    "test_models_match_the_migrations",
    "test_there_is_one_head",
    "test_upgrade_builds_the_models_tables_on_an_empty_database",
)
HEAD_TEST = "tests/test_migrations.py::test_there_is_one_head"

# [tool.pytest.ini_options] of the rendered pyproject.toml (without
# filterwarnings = ["error"]: the suite runs inside this session).
PYTEST_SETTINGS = """
[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
addopts = ["--strict-markers", "--strict-config"]
xfail_strict = true
"""


def add_initial_revision(project: MiniProject) -> Path:
    """The template's first revision, in migrations/versions/."""
    path = project.versions_dir / INITIAL_FILE
    path.write_text(_INITIAL.read_text())
    return path


def add_generated_suite(project: MiniProject) -> None:
    tests = project.root / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text('"""Fixtures of your own go here."""\n')
    names = "".join(f"    {name},\n" for name in MIGRATION_TESTS)
    (tests / "test_migrations.py").write_text(
        f"from flask_safe_migrations.testing import (  # noqa: F401\n{names})\n"
    )
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + PYTEST_SETTINGS)


def run_suite(
    pytester: pytest.Pytester, project: MiniProject, *args: str
) -> pytest.RunResult:
    """`pytest -q [args]` in the project (its rootdir and pyproject.toml), in
    this process: the library's plugin comes from its entry point. The test
    databases: TEST_DATABASE_URL if set, else SQLite files in the project."""
    project.forget_modules()
    with contextlib.chdir(project.root):
        return pytester.runpytest_inprocess(
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-p",
            "no:hypothesispytest",  # importing hypothesis takes seconds
            f"--rootdir={project.root}",
            "-c",
            str(project.root / "pyproject.toml"),
            *(args or ["tests"]),
        )
