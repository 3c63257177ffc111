"""A database that a newer release migrated (a rollback, or an old instance
during a rolling deploy): the older code's `flask db upgrade` and `flask db
current` explain it in one paragraph instead of Alembic's "Can't locate
revision", on every engine. (`flask db-status` serving it with a warning:
test_commands.py; the start script doing so: tests/test_deploy.py.)"""

from collections.abc import Callable

import sqlalchemy as sa

from .generated_suite import INITIAL_REVISION, USER, add_initial_revision
from .miniproject import MiniProject

NEWER = "4b2e8d1c9a07"


def test_the_older_releases_migration_commands_explain_a_newer_database(
    database_url: str, make_mini_project: Callable[..., MiniProject]
) -> None:
    project = make_mini_project(models=USER, database_url=database_url)
    add_initial_revision(project)
    app = project.app()
    project.upgrade(app)
    # What the newer release's migration left: its revision.
    with app.app_context(), app.extensions["sqlalchemy"].engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE alembic_version SET version_num = :newer"),
            {"newer": NEWER},
        )

    for command in ("upgrade", "current"):
        refused = project.flask(app, "db", command)

        assert refused.exit_code == 1, refused.output
        assert (
            f"Error: The database is at revision {NEWER}, which this code does"
            " not have: a newer release has migrated it"
            in " ".join(refused.output.split())
        ), refused.output
        assert "Can't locate revision" not in refused.output
        assert "Traceback" not in refused.output
    assert project.current(app) == (NEWER,)
    assert INITIAL_REVISION not in project.current(app)
