"""What a rendered project has that a MiniProject lacks, for the tests that
replay a rendered project's workflow in-process: the template's example User
model, its initial revision's id, and the generated pyproject.toml's ruff
settings."""

from ..helpers import ROOT
from .miniproject import MiniProject

INITIAL_REVISION = "3f1a9c2b7d40"

# The template's example model (models/user.py), under MODELS_HEADER.
USER = """
from datetime import datetime


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
"""
NAME = "    name: Mapped[str] = mapped_column(sa.String(100))\n"


def with_users(project: MiniProject, rev_id: str = INITIAL_REVISION) -> None:
    """Give ``project`` the User model and its revision, as rendered."""
    project.autogenerate(USER, "create users", rev_id=rev_id)


def add_template_ruff_settings(project: MiniProject) -> None:
    """Append the generated pyproject.toml's [tool.ruff] tables to the
    project's, so ruff (the post-write hooks included) runs as it does in a
    rendered project."""
    template = (ROOT / "template" / "pyproject.toml.jinja").read_text()
    ruff = template[template.index("[tool.ruff]") :].partition("\n[tool.mypy")[0]
    ruff = ruff.replace("{{ package_name }}", project.package)
    assert "{{" not in ruff and "{%" not in ruff, ruff  # no Jinja left
    with (project.root / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n" + ruff)
