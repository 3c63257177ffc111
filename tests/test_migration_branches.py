"""Two git branches that each add a revision: the generated suite says to merge
the heads (its single-head test runs first, needs no database, and the other
tests do not error at set-up), and after `flask db merge heads` it passes."""

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import add_model, run, run_tests
from .test_pipelines import pipeline_jobs

TEAM_MODEL = '''\
"""A team."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class Team(Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
'''
NAME = "    name: Mapped[str] = mapped_column(String(100))\n"
BIO = "    bio: Mapped[str | None] = mapped_column(String(500))\n"
HEAD_TEST = "tests/test_migrations.py::test_there_is_one_head"


def git(project: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=project,
        check=True,
        capture_output=True,
    )


def test_two_heads_are_reported_first_and_pass_once_merged(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    database = project / "instance" / "my_flask_app.db"

    def flask(*args: str) -> None:
        run(project, project_env, "flask", *args)

    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "initial")
    # Branch teams: a new model and its revision.
    git(project, "checkout", "-qb", "teams")
    flask("db", "upgrade")
    add_model(project, "team", "Team", TEAM_MODEL)
    flask("db", "migrate", "-m", "add teams")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "teams")
    # Branch bios, from main: a new column and its revision.
    git(project, "checkout", "-q", "main")
    git(project, "checkout", "-qb", "bios")
    database.unlink()
    flask("db", "upgrade")
    user = project / "my_flask_app" / "models" / "user.py"
    user.write_text(user.read_text().replace(NAME, NAME + BIO))
    flask("db", "migrate", "-m", "add bios")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "bios")
    git(project, "merge", "-q", "teams", "-m", "merge teams")

    # The head test first, with its advice; nothing errors at set-up.
    result = run_tests(project, project_env, check=False)
    assert result.returncode != 0
    first_failure = result.stdout.split("\nFAILED ")[1]
    assert first_failure.startswith(HEAD_TEST), result.stdout
    assert "Join them with: flask db merge heads -m merge" in result.stdout
    assert " error" not in result.stdout.splitlines()[-1], result.stdout
    # What CI runs first: no database needed (this one cannot be reached).
    alone = run_tests(
        project,
        project_env,
        HEAD_TEST,
        check=False,
        TEST_DATABASE_URL="postgresql://nobody@127.0.0.1:1/app_test",
    )
    assert alone.returncode == 1
    assert "flask db merge heads" in alone.stdout

    flask("db", "merge", "heads", "-m", "merge heads")

    # The walk steps through both branches and the merge point.
    run_tests(project, project_env)

    # A relative downgrade from the merge point cannot choose a branch: the
    # message names the merge's parents; naming one undoes the merge.
    flask("db", "upgrade")
    refused = run(project, project_env, "flask", "db", "downgrade", check=False)
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())
    assert "Ambiguous walk" not in message
    parent = message.split("`flask db downgrade ")[1].split("`")[0]
    assert f"which joins {parent}, " in message or f", {parent}:" in message, message
    flask("db", "downgrade", parent)


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_ci_checks_for_one_head_before_anything_needs_a_database(
    fresh_project: Callable[..., Path], ci: str
) -> None:
    (lint,) = [j for j in pipeline_jobs(fresh_project(ci=ci), ci) if j.name == "lint"]
    assert f"uv run pytest -q {HEAD_TEST}" in lint.commands
