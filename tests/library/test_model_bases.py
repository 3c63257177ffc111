"""A model on the plain declarative base (extensions.Base) that sets
__bind_key__ is refused, not ignored: Flask-SQLAlchemy honours binds only on
db.Model, so its rows would silently go to the main database. (Moved from
tests/test_models.py, which rendered a project and ran `flask` in a
subprocess for it.)"""

import pytest
from click.testing import CliRunner
from flask.cli import FlaskGroup

from .miniproject import MiniProject, logging_kept

PLAIN_BASE_WITH_BIND = """
from ..extensions import Base


class Event(Base):
    __tablename__ = "events"
    __bind_key__ = "analytics"

    id: Mapped[int] = mapped_column(primary_key=True)
"""


def test_a_bind_key_on_a_plain_base_model_is_refused_not_ignored(
    mini_project: MiniProject, environment: pytest.MonkeyPatch
) -> None:
    mini_project.set_models(PLAIN_BASE_WITH_BIND)
    environment.setenv("FLASK_DEBUG", "1")  # as a project's .flaskenv sets it
    # The `flask` command loads the app itself, as FLASK_APP has it do.
    cli = FlaskGroup(create_app=mini_project.create_app, load_dotenv=False)

    with logging_kept():
        result = CliRunner().invoke(cli, ["db", "current"])

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    message = " ".join(result.output.split())
    assert (
        f"Error: {mini_project.package}.models.Event sets __bind_key__ but"
        " subclasses extensions.Base" in message
    ), result.output
    assert "Subclass extensions.Model instead" in message
