"""Several databases, the Flask-SQLAlchemy way: a model with __bind_key__ lives
in its bind's database, and `flask db` migrates that database (its own tables,
its own alembic_version) with autogenerate, upgrade, downgrade, check, the
review and the generated migration tests; on SQLite and on real servers."""

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from .helpers import add_model, run, run_tests
from .servers import engine

EVENT_MODEL = '''\
"""A page view, kept in the analytics database."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class Event(Model):
    __bind_key__ = "analytics"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(200), index=True)
'''

EVENT_TESTS = '''\
"""The Event model's rows go to the analytics database."""

import pytest
from sqlalchemy import func, inspect, select

from my_flask_app.extensions import db
from my_flask_app.models import Event


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

ROWS = """\
from my_flask_app import create_app
from my_flask_app.extensions import db
from my_flask_app.models import Event, User

with create_app().app_context():
    db.session.add_all([Event(path="/"), Event(path="/about")])
    db.session.add(User(email="a@b.c", name="A"))
    db.session.commit()
"""


def revision_added(versions: Path, before: set[Path]) -> str:
    (revision,) = set(versions.glob("*.py")) - before
    return revision.read_text()


def bind_workflow(project: Path, venv: Path, **env: str) -> str:
    """What a user does: add a model with a bind, migrate, upgrade, check,
    downgrade and upgrade again. Returns the new revision."""

    def flask(*args: str) -> str:
        result = run(project, venv, "flask", *args, **env)
        return result.stdout + result.stderr

    flask("db", "upgrade")
    add_model(project, "event", "Event", EVENT_MODEL)
    # The new bind's database joins the history at the current revision; the
    # revisions before it (main database only) change nothing there.
    log = flask("db", "upgrade")
    assert "Running upgrade_analytics (none in this revision)" in log
    result = run(project, venv, "flask", "db", "check", check=False, **env)
    assert result.returncode != 0
    assert "add_table" in result.stderr  # the bind's model has no migration yet
    versions = project / "migrations" / "versions"
    before = set(versions.glob("*.py"))
    flask("db", "migrate", "-m", "add events")
    script = revision_added(versions, before)
    log = flask("db", "upgrade")
    assert re.search(r"Running upgrade \w+ -> \w+, add events", log)
    assert re.search(r"Running upgrade_analytics \w+ -> \w+, add events", log)
    flask("db", "check")
    flask("db", "downgrade")
    flask("db", "upgrade")
    flask("db", "check")
    return script


def test_a_bind_is_migrated_in_its_own_sqlite_database(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    script = bind_workflow(project, project_env)

    upgrade, bind_functions = script.split("def upgrade_analytics() -> None:")
    assert "op.create_table" not in upgrade  # nothing for the main database
    assert 'op.create_table(\n        "event"' in bind_functions
    assert "def downgrade_analytics() -> None:" in bind_functions
    run(project, project_env, "python", "-c", ROWS, FLASK_DEBUG="1")
    instance = project / "instance"
    with sqlite3.connect(instance / "my_flask_app_analytics.db") as connection:
        assert connection.execute("SELECT path FROM event").fetchall() == [
            ("/",),
            ("/about",),
        ]
        (version,) = connection.execute("SELECT * FROM alembic_version").fetchall()
    with sqlite3.connect(instance / "my_flask_app.db") as connection:
        tables = {
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        assert tables == {"users", "alembic_version"}
        assert connection.execute("SELECT * FROM alembic_version").fetchall() == [
            version
        ]
    # The generated suite: its migration tests take both databases up and
    # down; each test's rows in the bind are rolled back.
    (project / "tests" / "test_events.py").write_text(EVENT_TESTS)
    result = run_tests(project, project_env, "-rA")
    assert result.stdout.count("PASSED tests/test_events.py") == 2
    assert "PASSED tests/test_migrations.py::test_models_match" in result.stdout
    run(project, project_env, "mypy", "--no-incremental", "--cache-dir=/dev/null")
    run(project, project_env, "ruff", "check", ".")


@pytest.mark.parametrize("server_name", ["postgresql", "mysql"])
def test_a_bind_is_migrated_in_its_own_database_on_the_server(
    fresh_project: Callable[..., Path],
    project_env: Path,
    server_name: str,
    make_database: Callable[[str], str],
) -> None:
    main, analytics = make_database(server_name), make_database(server_name)
    project = fresh_project(database=server_name)
    env = {
        "DATABASE_URL": main,
        "FLASK_SQLALCHEMY_BINDS": json.dumps({"analytics": analytics}),
    }
    bind_workflow(project, project_env, **env)
    run(project, project_env, "python", "-c", ROWS, FLASK_DEBUG="1", **env)

    def tables_and_rows(url: str, table: str) -> tuple[set[str], int]:
        bind = engine(url)
        try:
            with bind.connect() as connection:
                names = set(sa.inspect(connection).get_table_names())
                count = connection.execute(sa.text(f"SELECT count(*) FROM {table}"))
                return names, int(count.scalar_one())
        finally:
            bind.dispose()

    assert tables_and_rows(analytics, "event") == ({"event", "alembic_version"}, 2)
    assert tables_and_rows(main, "users") == ({"users", "alembic_version"}, 1)
    result = run_tests(
        project,
        project_env,
        "-rA",
        TEST_DATABASE_URL=make_database(server_name),
        TEST_SQLALCHEMY_BINDS=json.dumps({"analytics": make_database(server_name)}),
    )
    assert "PASSED tests/test_migrations.py::test_models_match" in result.stdout
