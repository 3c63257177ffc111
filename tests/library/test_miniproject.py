"""The MiniProject fixture itself: a project the library runs in-process."""

import logging
import sys
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic.util import CommandError

from .miniproject import USERS, MiniProject


def test_migrate_writes_a_revision_that_upgrades_and_downgrades(
    mini_project: MiniProject,
) -> None:
    app = mini_project.app()

    revision = mini_project.migrate(app, "create users")
    assert revision is not None
    assert "op.create_table(" in revision.read_text()
    mini_project.upgrade(app)

    mini_project.check(app)
    assert mini_project.current(app) == mini_project.heads(app)
    engine = sa.create_engine(mini_project.database_url)
    assert "users" in sa.inspect(engine).get_table_names()
    mini_project.downgrade(app, "base")
    assert "users" not in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_migrate_writes_nothing_without_a_change_and_logs_why(
    mini_project: MiniProject, caplog: pytest.LogCaptureFixture
) -> None:
    """Also: pytest's log capture still works after a `flask db` command,
    which applies alembic.ini's logging configuration."""
    app = mini_project.app()
    mini_project.migrate(app, "create users")
    assert mini_project.flask(app, "db", "upgrade").exit_code == 0

    with caplog.at_level(logging.INFO):
        assert mini_project.migrate(app, "nothing") is None

    assert "No changes in the models; no revision written." in caplog.messages


def test_a_changed_model_is_read_by_the_next_app(mini_project: MiniProject) -> None:
    app = mini_project.app()
    mini_project.migrate(app, "create users")
    mini_project.upgrade(app)

    mini_project.set_models(
        USERS + "    name: Mapped[str | None] = mapped_column(sa.String(80))\n"
    )
    app = mini_project.app()
    with pytest.raises(CommandError, match="add_column"):
        mini_project.check(app)
    revision = mini_project.migrate(app, "add name")
    assert revision is not None
    assert 'batch_op.add_column(sa.Column("name"' in revision.read_text()


def test_the_flask_command_has_flask_db_and_the_library_commands(
    mini_project: MiniProject,
) -> None:
    app = mini_project.app()
    mini_project.migrate(app, "create users")

    upgrade = mini_project.flask(app, "db", "upgrade")
    status = mini_project.flask(app, "db-status")

    assert upgrade.exit_code == 0, upgrade.output
    assert "Running upgrade  -> " in upgrade.output
    assert status.exit_code == 0, status.output
    assert "at the newest revision" in status.output


def test_each_project_has_its_own_package_until_closed(
    make_mini_project: Callable[..., MiniProject],
) -> None:
    first, second = make_mini_project(), make_mini_project(models=USERS)
    assert first.package != second.package
    first_db = first.module("extensions").db
    second_db = second.module("extensions").db
    assert first_db is not second_db
    assert set(second_db.metadata.tables) == {"users"}
    assert not first_db.metadata.tables

    first.close()

    assert not [name for name in sys.modules if name.startswith(first.package)]
    assert str(first.root) not in sys.path
