"""Runs of flask-safe-migrations' pytest plugin on a MiniProject, with pytest's
``pytester``: what a generated project's suite does, without rendering one.

``plugin_project()`` writes a MiniProject into ``pytester.path`` (the folder
the inner runs start in) with the template's first revision (the users table,
for miniproject.USERS), a tests/ folder like the generated one (a test of the
app, and the migration tests imported from flask_safe_migrations.testing) and
the project importable. ``run()`` runs pytest on it in-process: the plugin
comes in through its ``pytest11`` entry point, as in a project, and the
package's modules are imported afresh by each run.

A test module that uses them declares ``pytest_plugins = ["pytester"]``.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from .library.conftest import clear_environment
from .library.miniproject import USERS, MiniProject, logging_kept

INITIAL_REVISION = "3f1a9c2b7d40"  # the template's first revision's id
INITIAL = '''\
"""create users table"""

import sqlalchemy as sa
from alembic import op

revision = "3f1a9c2b7d40"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )


def downgrade() -> None:
    op.drop_table("users")
'''
INITIAL_FILE = "2026_11_21_000000-3f1a9c2b7d40_create_users_table.py"

# The generated tests/, as far as the plugin sees it: a test that uses the
# database (as test_app.py's do), and the migration tests (test_migrations.py;
# the two about copier's answers and the template's files need a rendered
# project, and test_render.py/test_project.py run them there).
TEST_APP = """\
from flask import Flask


def test_the_app_is_testing(app: Flask) -> None:
    assert app.testing
"""
TEST_MIGRATIONS = """\
from flask_safe_migrations.testing import (  # noqa: F401
    test_every_model_module_is_imported,
    test_every_review_finding_is_acknowledged,
    test_every_revision_keeps_the_rows_and_downgrades_and_upgrades_again,
    test_models_match_the_migrations,
    test_there_is_one_head,
    test_upgrade_builds_the_models_tables_on_an_empty_database,
)
"""
WALK = "test_every_revision_keeps_the_rows_and_downgrades_and_upgrades_again"


@contextlib.contextmanager
def plugin_project(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    *,
    test_database_url: str | None = None,
    **options: Any,
) -> Iterator[MiniProject]:
    """A MiniProject in ``pytester.path`` (``options``: MiniProject.write's),
    run as a developer runs it (CI unset), on ``test_database_url`` if given
    (else the plugin's SQLite files)."""
    clear_environment(monkeypatch)
    monkeypatch.setenv("CI", "")
    if test_database_url:
        monkeypatch.setenv("TEST_DATABASE_URL", test_database_url)
    with logging_kept():
        project = MiniProject.write(pytester.path, **{"models": USERS, **options})
        project.add_revisions({INITIAL_FILE: INITIAL})
        tests = pytester.path / "tests"
        tests.mkdir()
        (tests / "test_app.py").write_text(TEST_APP)
        (tests / "test_migrations.py").write_text(TEST_MIGRATIONS)
        with project.opened():
            yield project


# The other plugins of this environment, which a project does not have:
# loading hypothesis's, for one, costs seconds a run.
OTHER_PLUGINS = (
    "hypothesispytest",
    "xdist",
    "xdist.looponfail",
    "copie",
    "platformdirs",
)
PYTEST_ARGS = ("-q", *(f"-pno:{name}" for name in OTHER_PLUGINS))


def run(
    project: MiniProject, pytester: pytest.Pytester, *args: str
) -> pytest.RunResult:
    """pytest, in-process, in the project's root."""
    project.forget_modules()
    return pytester.runpytest_inprocess(*PYTEST_ARGS, *args)


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
