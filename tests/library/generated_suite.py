"""What a rendered project has that a MiniProject (miniproject.py) lacks, and
its generated test suite, without copier:

- the template's first revision (INITIAL_REVISION), verbatim from
  template/migrations/versions/, and the example model it builds (USER);
  ``add_initial_revision(project)``, ``with_users(project)``;
- the generated tests/ (``write_generated_tests``): tests/test_migrations.py
  importing the library's migration tests (MIGRATION_TESTS: those of the
  rendered file, minus the two that check a copier-rendered layout), and the
  rendered pyproject.toml's pytest settings;
- running them: ``run_in_process`` (pytest's ``pytester``, in this process:
  the test module declares ``pytest_plugins = ["pytester"]``, and asks for
  ``pytester`` before ``make_mini_project``, so that pytester puts sys.path
  back after the projects are closed) or ``run_in_subprocess`` (where the
  plugin's session-wide state wants a session of its own);
- ``project_in(pytester)``: a MiniProject with that suite in pytester's folder;
- the generated pyproject.toml's ruff settings (``add_template_ruff_settings``).
"""

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Imported here, so that they stay imported across the in-process runs
# (pytester forgets the modules a run imported): a driver imported again makes
# new exception classes, which SQLAlchemy's dialects loaded before then do
# not recognise (a refused connection would escape as psycopg's own error).
import flask_safe_migrations.testing
import psycopg  # noqa: F401
import pymysql  # noqa: F401
import pytest
import sqlalchemy as sa
import sqlalchemy.dialects.mysql.pymysql
import sqlalchemy.dialects.postgresql.psycopg
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from ..helpers import ROOT
from .conftest import APP_VARIABLES, clear_environment
from .miniproject import MiniProject, logging_kept

# The template's first revision, verbatim. Its file is named
# "{% if example_model %}2026_..._create_users_table.py{% endif %}.jinja".
INITIAL_REVISION = "3f1a9c2b7d40"
_INITIAL = next(
    (ROOT / "template" / "migrations" / "versions").glob(f"*{INITIAL_REVISION}*")
)
INITIAL_FILE = _INITIAL.name.split("%}")[1].split("{%")[0]
INITIAL_TEXT = _INITIAL.read_text()

# The template's example model (models/user.py), as the first revision builds
# it: USER_CLASS after a models module's own imports, USER with its import.
NAME = "    name: Mapped[str] = mapped_column(sa.String(100))\n"
EMAIL = "    email: Mapped[str] = mapped_column(sa.String(255), unique=True)\n"
USER_CLASS = f"""
class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
{EMAIL}{NAME}    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.current_timestamp()
    )
"""
USER = "\nfrom datetime import datetime\n" + USER_CLASS


def bio_revision(revision: str, down_revision: str) -> str:
    """A revision that adds the nullable column users.bio to USER's table."""
    return f'''\
"""add bio to users"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("bio", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "bio")
'''


# A second model, for the tests that add a table to the history.
TEAM = """
class Team(Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
"""


def initial_revision() -> dict[str, str]:
    """The template's first revision: file name -> text (MiniProject.add_revisions)."""
    return {INITIAL_FILE: INITIAL_TEXT}


def add_initial_revision(project: MiniProject) -> Path:
    """The template's first revision, in the project's migrations/versions/."""
    project.add_revisions(initial_revision())
    return project.versions_dir / INITIAL_FILE


def with_users(project: MiniProject) -> None:
    """Give ``project`` the User model and its revision, as rendered."""
    project.set_models(USER)
    add_initial_revision(project)


# The generated tests/test_migrations.py's tests that hold on any project: all
# but the two about a copier-rendered project's own files and answers, which
# test_render.py and test_project.py run on rendered projects.
RENDERED_ONLY = (
    "test_no_template_file_is_missing",
    "test_the_package_is_the_one_copier_answers_name",
)
MIGRATION_TESTS = tuple(
    name for name in flask_safe_migrations.testing.__all__ if name not in RENDERED_ONLY
)
HEAD_TEST = "tests/test_migrations.py::test_there_is_one_head"
WALK = "test_every_revision_keeps_the_rows_and_downgrades_and_upgrades_again"
TEST_MIGRATIONS = (
    "from flask_safe_migrations.testing import (  # noqa: F401\n"
    + "".join(f"    {name},\n" for name in MIGRATION_TESTS)
    + ")\n"
)
# A test that uses the app and its database, as the generated test_app.py's do.
TEST_APP = """\
from flask import Flask


def test_the_app_is_testing(app: Flask) -> None:
    assert app.testing
"""
# [tool.pytest.ini_options] of the rendered pyproject.toml (without
# filterwarnings = ["error"]: the suite may run inside this session).
PYTEST_SETTINGS = """
[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
addopts = ["--strict-markers", "--strict-config"]
xfail_strict = true
"""


def write_generated_tests(
    project: MiniProject, *, test_app: bool = False, migration_rows: str | None = None
) -> None:
    """The generated tests/ in ``project``: conftest.py, test_migrations.py
    (MIGRATION_TESTS), test_app.py if ``test_app``, migration_rows.py if given;
    and the pytest settings in its pyproject.toml."""
    tests = project.root / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "conftest.py").write_text('"""Fixtures of your own go here."""\n')
    (tests / "test_migrations.py").write_text(TEST_MIGRATIONS)
    if test_app:
        (tests / "test_app.py").write_text(TEST_APP)
    if migration_rows is not None:
        (tests / "migration_rows.py").write_text(migration_rows)
    pyproject = project.root / "pyproject.toml"
    if "[tool.pytest.ini_options]" not in pyproject.read_text():
        pyproject.write_text(pyproject.read_text() + PYTEST_SETTINGS)


# The template repository's own plugins, which a project does not have: off
# in the runs (hypothesis's would import itself anew in each, for seconds).
OTHER_PLUGINS = (
    "hypothesispytest",
    "xdist",
    "xdist.looponfail",
    "copie",
    "platformdirs",
)
NO_OTHER_PLUGINS = tuple(f"-pno:{name}" for name in OTHER_PLUGINS)
# pytest without its cache: the plugin keeps no test database or proof
# between runs (each run builds from empty and walks every revision).
NO_CACHE = ("-p", "no:cacheprovider")


def run_in_process(
    pytester: pytest.Pytester, project: MiniProject, *args: str
) -> pytest.RunResult:
    """`pytest -q [args]` in the project (its rootdir and pyproject.toml), in
    this process: the library's plugin comes from its entry point, and the
    project's modules are imported afresh. The environment is the test's
    (TEST_DATABASE_URL, else SQLite files in the project)."""
    project.forget_modules()
    with contextlib.chdir(project.root), logging_kept():
        return pytester.runpytest_inprocess(
            "-q",
            *NO_OTHER_PLUGINS,
            f"--rootdir={project.root}",
            *("-c", str(project.root / "pyproject.toml")),
            *args,
        )


def run_in_subprocess(
    project: MiniProject, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Write the generated tests into ``project`` and run pytest on them with
    ``args`` in a subprocess, with only the library's plugin; ``env``: extra
    variables (TEST_DATABASE_URL...), in an environment without the app's
    settings (as the ``environment`` fixture's). AssertionError with the
    output if a test fails."""
    write_generated_tests(project)
    process = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"),
            *("-p", "flask_safe_migrations.pytest_plugin", "tests", *args),
        ],
        cwd=project.root,
        env={
            **{
                name: value
                for name, value in os.environ.items()
                if not name.startswith("FLASK_") and name not in APP_VARIABLES
            },
            "PYTHONPATH": str(project.root),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    return process


@contextlib.contextmanager
def project_in(
    pytester: pytest.Pytester,
    models: str = USER,
    revisions: dict[str, str] | None = None,
    *,
    test_app: bool = False,
    migration_rows: str | None = None,
    **options: Any,
) -> Iterator[MiniProject]:
    """A MiniProject in pytester's folder (MiniProject.write's ``options``),
    opened, with ``models``, the ``revisions`` (name -> text; default: the
    template's first revision) and the generated tests."""
    with logging_kept():
        project = MiniProject.write(pytester.path, models=models, **options)
        project.add_revisions(initial_revision() if revisions is None else revisions)
        write_generated_tests(project, test_app=test_app, migration_rows=migration_rows)
        with project.opened():
            yield project


@contextlib.contextmanager
def plugin_project(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    *,
    test_database_url: str | None = None,
    **options: Any,
) -> Iterator[MiniProject]:
    """``project_in`` with a test of the app too, run as a developer runs it
    (no app settings, CI unset), on ``test_database_url`` if given (else the
    plugin's SQLite files)."""
    clear_environment(monkeypatch)
    monkeypatch.setenv("CI", "")
    if test_database_url:
        monkeypatch.setenv("TEST_DATABASE_URL", test_database_url)
    with project_in(pytester, test_app=True, **options) as project:
        yield project


def migration_tests(
    pytester: pytest.Pytester, project: MiniProject, keyword: str = ""
) -> tuple[int, str]:
    """Run the project's migration tests (those matching ``keyword``, as with
    -k) in-process: the exit code and the report."""
    selection = ("-k", keyword) if keyword else ()
    result = run_in_process(pytester, project, "tests/test_migrations.py", *selection)
    report = "\n".join(result.outlines)
    assert " passed" in report or " failed" in report, report
    return int(result.ret), report


def summary(result: pytest.RunResult) -> str:
    """The summary's lines about the test databases and the migration walk
    (the whole output if it has none)."""
    lines = [
        line
        for line in result.outlines
        if line.startswith(("Test databases:", "Migration walk:"))
    ]
    return "\n".join(lines) if lines else "\n".join(result.outlines + result.errlines)


def app_on(project: MiniProject, url: str) -> Flask:
    """An app of the project on the database ``url``."""
    return project.app(SQLALCHEMY_DATABASE_URI=url)


def dispose(app: Flask) -> None:
    """Close the app's connections (a server database is dropped after the test)."""
    db: SQLAlchemy = app.extensions["sqlalchemy"]
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def count_rows(url: sa.URL | str, table: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return int(
                connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
                or 0
            )
    finally:
        engine.dispose()


def add_template_ruff_settings(project: MiniProject) -> None:
    """Append the generated pyproject.toml's [tool.ruff] tables to the
    project's, so ruff (the post-write hooks included) runs as it does in a
    rendered project."""
    template = (ROOT / "template" / "pyproject.toml.jinja").read_text()
    ruff = template[template.index("[tool.ruff]") :].partition("\n[tool.mypy")[0]
    ruff = ruff.replace("{{ package_name }}", project.package)
    assert "{{" not in ruff and "{%" not in ruff, ruff  # no Jinja left
    with (project.root / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n" + ruff)


@contextlib.contextmanager
def terminal() -> Iterator[io.StringIO]:
    """What `flask db migrate` prints on the terminal (the review's report,
    on stderr) while the block runs."""
    output = io.StringIO()
    with contextlib.redirect_stderr(output):
        yield output
