"""Several databases, the Flask-SQLAlchemy way: a model with __bind_key__ lives
in its bind's database, and `flask db` migrates that database (its own tables,
its own alembic_version) with autogenerate, upgrade, downgrade, check, the
review and the migration tests; on SQLite and on real servers. In-process on
a MiniProject with the template's User model (the migration tests in a pytest
subprocess)."""

import json
import re
import subprocess
import sys
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask

from ..servers import engine
from .generated_suite import (
    USER,
    add_template_ruff_settings,
    run_in_subprocess,
    with_users,
)
from .miniproject import MiniProject

EVENT = """

class Event(Model):
    __bind_key__ = "analytics"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(sa.String(200), index=True)
"""

EVENT_TESTS = '''\
"""The Event model's rows go to the analytics database."""

import pytest
from sqlalchemy import func, inspect, select

from PACKAGE.extensions import db
from PACKAGE.models import Event


@pytest.mark.parametrize("run", ["first", "second"])
@pytest.mark.usefixtures("app")
def test_events_live_in_the_analytics_database(run: str) -> None:
    assert "event" not in inspect(db.engines[None]).get_table_names()
    assert Event.query.count() == 0  # the other run's row was rolled back
    db.session.add(Event(path=f"/{run}"))
    db.session.commit()
    assert db.session.get_bind(Event) is db.engines["analytics"]
    assert db.session.scalar(select(func.count()).select_from(Event)) == 1
'''


def bind_workflow(project: MiniProject) -> tuple[Flask, str]:
    """What a user does: add a model with a bind, migrate, upgrade, check,
    downgrade and upgrade again (the `flask` command, in-process, on the
    databases of the environment). The app and the new revision."""

    def flask(app: Flask, *args: str, code: int = 0) -> str:
        result = project.flask(app, *args)
        assert result.exit_code == code, result.output
        return result.output

    flask(project.create_app(), "db", "upgrade")
    project.set_models(USER + EVENT)
    app = project.create_app()
    # The new bind's database joins the history at the current revision; the
    # revisions before it (main database only) change nothing there.
    log = flask(app, "db", "upgrade")
    assert "Running upgrade_analytics (none in this revision)" in log
    # The bind's model has no migration yet.
    assert "add_table" in flask(app, "db", "check", code=1)
    before = set(project.revisions())
    flask(app, "db", "migrate", "-m", "add events")
    (revision,) = set(project.revisions()) - before
    log = flask(app, "db", "upgrade")
    assert re.search(r"Running upgrade \w+ -> \w+, add events", log)
    assert re.search(r"Running upgrade_analytics \w+ -> \w+, add events", log)
    flask(app, "db", "check")
    flask(app, "db", "downgrade")
    flask(app, "db", "upgrade")
    flask(app, "db", "check")
    with app.app_context():
        models, db = project.module("models"), app.extensions["sqlalchemy"]
        db.session.add_all([models.Event(path="/"), models.Event(path="/about")])
        db.session.add(models.User(email="a@b.c", name="A"))
        db.session.commit()
    return app, revision.read_text()


def tables_and_rows(bind: sa.Engine, table: str) -> tuple[set[str], list[tuple]]:
    with bind.connect() as connection:
        names = set(sa.inspect(connection).get_table_names())
        rows = connection.execute(sa.text(f"SELECT * FROM {table}"))
        return names, [tuple(row) for row in rows]


def test_a_bind_is_migrated_in_its_own_sqlite_database(
    make_mini_project: Callable[..., MiniProject], environment: pytest.MonkeyPatch
) -> None:
    project = make_mini_project()
    add_template_ruff_settings(project)
    with_users(project)
    # Development: the app's SQLite file, and one for the bind, in instance/.
    environment.setenv("FLASK_DEBUG", "1")

    app, script = bind_workflow(project)

    upgrade, bind_functions = script.split("def upgrade_analytics() -> None:")
    assert "op.create_table" not in upgrade  # nothing for the main database
    assert 'op.create_table(\n        "event"' in bind_functions
    assert "def downgrade_analytics() -> None:" in bind_functions
    subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "migrations"],
        cwd=project.root,
        check=True,
    )
    instance = project.root / "instance"
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        assert db.engines["analytics"].url.database == str(
            instance / f"{project.package}_analytics.db"
        )
        assert db.engine.url.database == str(instance / f"{project.package}.db")
        names, events = tables_and_rows(db.engines["analytics"], "event")
        assert (names, events) == (
            {"event", "alembic_version"},
            [(1, "/"), (2, "/about")],
        )
        names, users = tables_and_rows(db.engine, "users")
        assert names == {"users", "alembic_version"}
        assert len(users) == 1
        versions = [
            tables_and_rows(db.engines[key], "alembic_version")[1]
            for key in (None, "analytics")
        ]
        assert versions[0] == versions[1]
    # The migration tests take both databases up and down; each test's rows in
    # the bind are rolled back.
    (project.root / "tests").mkdir()
    (project.root / "tests" / "test_events.py").write_text(
        EVENT_TESTS.replace("PACKAGE", project.package)
    )
    result = run_in_subprocess(project)
    assert result.stdout.count("PASSED tests/test_events.py") == 2
    assert "PASSED tests/test_migrations.py::test_models_match" in result.stdout


@pytest.mark.parametrize("server_name", ["postgresql", "mysql"])
def test_a_bind_is_migrated_in_its_own_database_on_the_server(
    server_name: str,
    make_database: Callable[[str], str],
    make_mini_project: Callable[..., MiniProject],
    environment: pytest.MonkeyPatch,
) -> None:
    main, analytics = make_database(server_name), make_database(server_name)
    tests = make_database(server_name), make_database(server_name)
    project = make_mini_project(production_engine=server_name)
    with_users(project)
    environment.setenv("FLASK_DEBUG", "1")
    environment.setenv("DATABASE_URL", main)
    environment.setenv("FLASK_SQLALCHEMY_BINDS", json.dumps({"analytics": analytics}))

    bind_workflow(project)

    for url, table, expected in (
        (analytics, "event", ({"event", "alembic_version"}, 2)),
        (main, "users", ({"users", "alembic_version"}, 1)),
    ):
        bind = engine(url)
        try:
            names, rows = tables_and_rows(bind, table)
        finally:
            bind.dispose()
        assert (names, len(rows)) == expected
    environment.delenv("DATABASE_URL")
    environment.delenv("FLASK_SQLALCHEMY_BINDS")
    result = run_in_subprocess(
        project,
        TEST_DATABASE_URL=tests[0],
        TEST_SQLALCHEMY_BINDS=json.dumps({"analytics": tests[1]}),
    )
    assert "PASSED tests/test_migrations.py::test_models_match" in result.stdout
