"""A model module that nothing imports is a table `flask db migrate` never
sees: the command and the migration test both refuse it, in one paragraph
naming the module and the import to add, while a module without model
classes is left alone. (Moved from tests/test_careless_projects.py, which
rendered a project and ran `flask` and pytest in subprocesses for it.)"""

import pytest

from .miniproject import MiniProject

pytest_plugins = ["pytester"]

TAG_MODEL = '''\
"""A tag, in a module that models/__init__.py does not import."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class Tag(Model):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
'''
# A module without classes that nothing imports is not a model: no finding.
HELPERS = 'def slug(text: str) -> str:\n    return ""\n'


@pytest.fixture
def careless(mini_project: MiniProject) -> MiniProject:
    """The mini project with models/tag.py (a model) and models/helpers.py
    (not one), neither imported by models/__init__.py."""
    mini_project.write_file("models/tag.py", TAG_MODEL)
    mini_project.write_file("models/helpers.py", HELPERS)
    return mini_project


def test_a_model_module_nothing_imports_is_refused(
    careless: MiniProject, pytester: pytest.Pytester
) -> None:
    app = careless.app()
    assert careless.flask(app, "db", "upgrade").exit_code == 0
    revisions = careless.revisions()

    result = careless.flask(app, "db", "migrate", "-m", "t")

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if "is not imported" in line]
    assert len(lines) == 1, result.output
    message = lines[0]
    # Flask-Migrate's error line, through alembic.ini's logging.
    assert message.startswith("ERROR [flask_migrate] Error: ")
    assert f"{careless.package}/models/tag.py (Tag) is not imported" in message
    assert (
        f"Add `from .tag import Tag` to {careless.package}/models/__init__.py"
        ' (and "Tag" to __all__)' in message
    )
    assert "helpers" not in message
    assert careless.revisions() == revisions

    # The migration test fails the same way, though a test imports the module
    # (the check looks at what the app imports).
    tests = careless.root / "tests"
    tests.mkdir()
    (tests / "test_tag.py").write_text(
        f"from {careless.package}.models.tag import Tag\n\n\n"
        "def test_tag_table() -> None:\n"
        '    assert Tag.__tablename__ == "tags"\n'
    )
    (tests / "test_migrations.py").write_text(
        "from flask_safe_migrations.testing import (  # noqa: F401\n"
        "    test_every_model_module_is_imported,\n"
        ")\n"
    )
    suite = pytester.runpytest_subprocess(
        f"--rootdir={careless.root}",
        *("-o", f"pythonpath={careless.root}", "-p", "no:cacheprovider"),
        str(tests / "test_tag.py"),
        str(tests / "test_migrations.py"),
    )

    suite.assert_outcomes(passed=1, failed=1)
    output = suite.stdout.str()
    assert "test_migrations.py::test_every_model_module_is_imported" in output
    assert message.removeprefix("ERROR [flask_migrate] Error: ") in output
