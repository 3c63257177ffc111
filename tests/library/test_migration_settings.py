"""The user's migration_settings.py (the template's, as rendered) decides what
migrations compare, without an edit to any file the template owns: a table
another tool owns is left alone, and models in a PostgreSQL schema other than
public migrate cleanly. In-process on a MiniProject."""

import hashlib
import subprocess
import sys
from collections.abc import Callable

import sqlalchemy as sa

from ..helpers import ROOT
from ..servers import engine
from .generated_suite import (
    MIGRATION_TESTS,
    USER,
    add_template_ruff_settings,
    run_in_subprocess,
    with_users,
)
from .miniproject import MiniProject

SETTINGS = (
    ROOT / "template" / "{{package_name}}" / "migration_settings.py"
).read_text()


def template_owned(project: MiniProject) -> dict[str, str]:
    """The files the template owns in the project, hashed."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(project.migrations_dir.glob("*"))
        if path.is_file()
    }


def test_ignored_tables_are_left_to_the_tool_that_owns_them(
    make_mini_project: Callable[..., MiniProject],
) -> None:
    project = make_mini_project(migration_settings=SETTINGS)
    add_template_ruff_settings(project)
    with_users(project)
    owned = template_owned(project)
    revisions = project.revisions()
    app = project.app()
    project.upgrade(app)
    # A job queue creates its own tables in the app's database.
    db = app.extensions["sqlalchemy"]
    with app.app_context(), db.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE celery_taskmeta (id INTEGER PRIMARY KEY)"
        )
    result = project.flask(app, "db", "check")
    assert result.exit_code != 0
    assert "remove_table" in result.output  # autogenerate would drop it

    settings = project.write_file(
        "migration_settings.py",
        SETTINGS.replace(
            "IGNORE_TABLES: set[str] = set()", 'IGNORE_TABLES = {"celery_*"}'
        ),
    )

    app = project.app()
    result = project.flask(app, "db", "check")
    assert result.exit_code == 0, result.output
    result = project.flask(app, "db", "migrate", "-m", "nothing")
    assert result.exit_code == 0, result.output
    assert "No changes in the models" in result.output
    assert project.revisions() == revisions
    assert template_owned(project) == owned
    # The edited settings module passes the generated project's linters.
    # (mypy on a copy outside the package: the mini package is not typed.)
    alone = project.root / "typed" / "migration_settings.py"
    alone.parent.mkdir()
    alone.write_text(settings.read_text())
    for tool in (
        ("ruff", "check", "--no-cache", str(settings)),
        ("mypy", "--strict", "--no-incremental", "--cache-dir=/dev/null", str(alone)),
    ):
        subprocess.run([sys.executable, "-m", *tool], cwd=project.root, check=True)

    # A project updated from a template without the settings module: defaults.
    settings.unlink()
    project.forget_modules()
    result = project.flask(project.app(), "db", "check")
    assert result.exit_code != 0
    assert "remove_table" in result.output


INVOICE = """

class Invoice(Model):
    __tablename__ = "invoices"
    __table_args__ = {"schema": "billing"}

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(20), unique=True)
"""


def test_a_model_in_a_postgresql_schema_migrates_cleanly(
    make_database: Callable[[str], str],
    make_mini_project: Callable[..., MiniProject],
) -> None:
    """The user's revision creates the schema; `flask db check` is clean after
    it, and tables in a schema no model names are left alone."""
    url, test_url = make_database("postgresql"), make_database("postgresql")
    project = make_mini_project(migration_settings=SETTINGS, database_url=url)
    with_users(project)
    owned = template_owned(project)
    bind = engine(url)
    try:
        with bind.begin() as connection:  # another tool's schema and table
            connection.execute(sa.text("CREATE SCHEMA reports"))
            connection.execute(sa.text("CREATE TABLE reports.daily (id int)"))
        project.upgrade(project.app())
        project.set_models(USER + INVOICE)
        app = project.app()

        revision = project.migrate(app, "invoices")

        assert revision is not None
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
        project.upgrade(app)
        project.check(app)
        project.downgrade(app)
        with bind.connect() as connection:
            schemas = sa.inspect(connection).get_schema_names()
        assert "billing" not in schemas
        assert "reports" in schemas
        project.upgrade(app)
        project.check(app)
        with bind.connect() as connection:
            assert sa.inspect(connection).get_table_names(schema="billing") == [
                "invoices"
            ]
            assert sa.inspect(connection).get_table_names(schema="reports") == ["daily"]
        result = run_in_subprocess(project, TEST_DATABASE_URL=test_url)
        assert f"\n{len(MIGRATION_TESTS)} passed" in result.stdout, result.stdout
        assert template_owned(project) == owned, "only the user's files changed"
        assert (project.package_dir / "migration_settings.py").read_text() == SETTINGS
    finally:
        bind.dispose()
