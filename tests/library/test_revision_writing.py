"""What `flask db revision`, `flask db migrate` and `flask db check` write and
say on a MiniProject (in-process): a hand-written revision keeps its imports,
autogenerate refuses a name the revision would not import, and check names a
server default that only a revision holds."""

import subprocess
import sys
from collections.abc import Callable

import sqlalchemy as sa
from alembic import command

from .generated_suite import add_template_ruff_settings
from .miniproject import MiniProject

NAMED_USERS = """
class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
"""


def test_hand_written_revision_keeps_its_imports(mini_project: MiniProject) -> None:
    """Item 10: the ruff post-write hook left `flask db revision` without `op`
    and `sa`, the two names a hand-written revision is made of. The hook runs
    with the ruff settings of the generated pyproject.toml."""
    add_template_ruff_settings(mini_project)
    app = mini_project.app()
    with app.app_context():
        command.revision(mini_project.alembic_config(app), "backfill nicknames")

    (revision,) = mini_project.versions_dir.glob("*backfill_nicknames.py")
    text = revision.read_text()
    assert "\nimport sqlalchemy as sa\n" in text
    assert "\nfrom alembic import op\n" in text
    subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(revision)],
        cwd=mini_project.root,
        check=True,
    )


POINT_MODEL = '''\
"""A place, with the app's own column types."""

from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, UserDefinedType

from ..extensions import Base


class Trimmed(TypeDecorator[str]):
    """Stored as {impl}; the app trims it."""

    impl = {impl}
    cache_ok = True


class Point(UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "POINT"


class Place(Base):
    __tablename__ = "places"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Trimmed())
'''


def test_migrate_writes_no_revision_that_names_what_it_does_not_import(
    mini_project: MiniProject,
) -> None:
    """Item 4: a name the revision does not import fails `flask db migrate` with
    a message, instead of a NameError at upgrade. The app's TypeDecorator is
    written as the type it stores; a UserDefinedType cannot be."""
    project = mini_project
    place = POINT_MODEL.replace("{impl}", "String(100)")
    project.set_models("from .place import Place  # noqa: F401\n")
    project.write_file("models/place.py", place)
    app = project.app()
    project.upgrade(app)
    written = project.migrate(app, "places")
    assert written is not None
    assert 'sa.Column("name", sa.String(length=100), nullable=False)' in (
        written.read_text()
    )
    written.unlink()

    project.write_file(
        "models/place.py",
        place.replace("mapped_column(Trimmed())", "mapped_column(Point())"),
    )
    result = project.flask(project.app(), "db", "migrate", "-m", "points")

    assert result.exit_code != 0
    assert not list(project.versions_dir.glob("*points.py"))
    assert (
        "No revision written: the code autogenerate wrote uses"
        f" {project.package} without importing it" in result.output
    )
    assert f"{project.package}.models.place.Point()" in result.output
    assert "Traceback" not in result.output


DEFAULT_IN_REVISION = '''\
"""users.name defaults to 'anonymous', written in this revision only"""

import sqlalchemy as sa
from alembic import op

revision = "0defa0170000"
down_revision = "3f1a9c2b7d40"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column(
            "name", existing_type=sa.String(100), server_default="anonymous"
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("name", existing_type=sa.String(100), server_default=None)
'''


def test_check_names_a_default_missing_from_the_model_with_its_value(
    mini_project: MiniProject,
) -> None:
    """Item 11: a server default written only in a revision. `flask db check`
    fails (the model is where defaults belong), says why and where, and shows
    the value rather than `<TextClause object at 0x...>`."""
    project = mini_project
    project.autogenerate(NAMED_USERS, "create users", rev_id="3f1a9c2b7d40")
    (project.versions_dir / "2026_11_22_000000-0defa0170000_default.py").write_text(
        DEFAULT_IN_REVISION
    )
    app = project.app()
    project.upgrade(app)

    result = project.flask(app, "db", "check")

    assert result.exit_code != 0
    assert (
        "users.name has the server default 'anonymous' in the database but none"
        " on the model" in result.output
    )
    assert "add server_default=... to the column" in result.output
    assert "sa.text(\"'anonymous'\")" in result.output
    assert "object at 0x" not in result.output


# A project's own render_item, in its migration_settings.py: it renders one
# type of its own and leaves everything else (False) to the library.
CHAINED_SETTINGS = """
from typing import Any

import sqlalchemy as sa


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    if type_ == "type" and isinstance(obj, sa.String) and obj.length == 8:
        return "sa.Unicode(length=8)"
    return False


CONFIGURE_OPTIONS = {"render_item": render_item}
"""
FLAGS = """
class Flag(Model):
    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(8))
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
"""


def test_a_projects_render_item_runs_before_the_librarys(
    database_url: str, make_mini_project: Callable[..., MiniProject]
) -> None:
    """CONFIGURE_OPTIONS' render_item used to replace the library's: the
    boolean default was written as one engine spells it (sa.text("0") on
    SQLite, which PostgreSQL refuses). Now the user's renders first and the
    library's renders what it leaves; the revision runs, with a row."""
    project = make_mini_project(
        models=FLAGS, database_url=database_url, migration_settings=CHAINED_SETTINGS
    )
    app = project.app()

    revision = project.migrate(app, "flags")

    assert revision is not None
    script = revision.read_text()
    assert 'sa.Column("code", sa.Unicode(length=8)' in script  # the user's
    assert "server_default=sa.false()" in script  # the library's
    project.upgrade(app)
    with app.app_context(), app.extensions["sqlalchemy"].engine.begin() as c:
        c.execute(sa.text("INSERT INTO flags (code) VALUES ('a')"))
        assert c.execute(sa.text("SELECT active FROM flags")).scalar() in (0, False)
    project.check(app)
