"""The library's entry points, as its pyproject.toml declares them: the
`flask` subcommands (``flask.commands``) and the pytest plugin (``pytest11``),
which stays inert outside a project that declares itself."""

from importlib.metadata import entry_points

import click
import pytest
from flask_safe_migrations import commands, pytest_plugin


def test_the_flask_command_gets_the_librarys_commands() -> None:
    found = {
        point.name: point
        for point in entry_points(group="flask.commands")
        if point.value.startswith("flask_safe_migrations.")
    }

    assert sorted(found) == ["db-baseline", "db-status", "db-wait"]
    for name, point in found.items():
        command = point.load()
        assert isinstance(command, click.Command)
        assert command.name == name
        assert command is getattr(commands, name.replace("-", "_"))


def test_pytest_loads_the_plugin(pytestconfig: pytest.Config) -> None:
    (point,) = [
        point
        for point in entry_points(group="pytest11")
        if point.value.startswith("flask_safe_migrations")
    ]

    assert point.value == "flask_safe_migrations.pytest_plugin"
    assert point.load() is pytest_plugin
    assert pytestconfig.pluginmanager.get_plugin(point.name) is pytest_plugin


def test_the_plugin_is_inert_where_no_project_declares_itself(
    pytestconfig: pytest.Config,
) -> None:
    """This repository's pyproject.toml has no [tool.flask-safe-migrations]:
    the plugin found no project, imported no app, and checks no database."""
    assert pytestconfig.stash[pytest_plugin.PROJECT] is None
    assert pytest_plugin.TEST_URLS not in pytestconfig.stash
    assert pytest_plugin.SETUP not in pytestconfig.stash
