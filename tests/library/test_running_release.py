"""Dropping a column that the running release still maps is caught before
deploy: `python -m flask_safe_migrations.running_release BASE` reads the
models of `git merge-base BASE HEAD` (a real git repository in tmp_path) and
refuses a drop_column of a column they map, until a release has retired it
(kept in the table, unmapped). The two releases keep the rows on every
engine, and the previous release keeps working after the retire release's
migration; `flask db-status` calls a database that lacks a column the code
maps not ready."""

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_safe_migrations import running_release

from .generated_suite import migration_tests, project_in
from .miniproject import MiniProject

pytest_plugins = ["pytester"]

# Release N-1: the column is mapped, NOT NULL.
MAPPED = """
from sqlalchemy.orm import Unmapped, unmapped_column


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
"""
# Release N: retired, still in the table, nullable so that inserts work.
RETIRED = MAPPED.replace(
    "    name: Mapped[str] = mapped_column(sa.String(100))",
    "    name: Unmapped[str | None] = unmapped_column(sa.String(100))",
)
# Retired but still NOT NULL without a default: the ORM's inserts fail.
RETIRED_NOT_NULL = MAPPED.replace(
    "    name: Mapped[str] = mapped_column(sa.String(100))",
    "    name: Unmapped[str] = unmapped_column(sa.String(100))",
)
# Retired, NOT NULL with a server default: on MySQL/MariaDB setting a default
# changes only the table's definition, where dropping NOT NULL rebuilds it.
RETIRED_WITH_DEFAULT = MAPPED.replace(
    "    name: Mapped[str] = mapped_column(sa.String(100))",
    "    name: Unmapped[str] = unmapped_column(sa.String(100), server_default='')",
)
# Release N+1: gone.
DROPPED = MAPPED.replace("    name: Mapped[str] = mapped_column(sa.String(100))\n", "")


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def release(project: MiniProject, message: str) -> None:
    """Commit the project as it is: a release (the first one starts the repository)."""
    root = project.root
    if not (root / ".git").exists():
        git(root, "init", "--quiet", "--initial-branch=main")
        (root / ".gitignore").write_text("*.db\n__pycache__/\n")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", message)


def check(
    project: MiniProject,
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    base: str = "main",
) -> tuple[int, str]:
    """Run the command from the project's root, as CI does: (exit code, output)."""
    environment.chdir(project.root)
    code = running_release.main([base])
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def test_dropping_a_column_in_the_change_that_unmaps_it_is_refused(
    make_mini_project: Callable[..., MiniProject],
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_mini_project(models=MAPPED)
    project.autogenerate(MAPPED, "users", rev_id="a00000000001")
    release(project, "release N")
    git(project.root, "checkout", "--quiet", "-b", "change")
    drop = project.autogenerate(DROPPED, "drop users.name", rev_id="d00000000002")
    assert 'drop_column("name")' in drop.read_text()

    code, output = check(project, environment, capsys)

    assert code == 1, output
    assert (
        f"{drop.name} (revision d00000000002) drops users.name, which the"
        " running release still maps" in output
    ), output
    assert "This release retires users.name" in output
    assert "The next release, once every instance runs this one" in output
    assert "drop column users.name while the running release maps it" in output
    # Committed or not, the revision is the change's.
    release(project, "the change")
    assert check(project, environment, capsys)[0] == 1


TEAMS = """
class Team(Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
"""
# The retiring release of a table: no class maps it, the metadata keeps it.
TEAMS_RETIRED = """
teams = sa.Table("teams", db.metadata, sa.Column("id", sa.Integer, primary_key=True))
"""


def test_dropping_a_table_the_running_release_maps_is_refused(
    make_mini_project: Callable[..., MiniProject],
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_mini_project(models=MAPPED + TEAMS)
    project.autogenerate(MAPPED + TEAMS, "users", rev_id="a00000000001")
    release(project, "release N")
    drop = project.autogenerate(MAPPED, "drop teams", rev_id="d00000000002")

    code, output = check(project, environment, capsys)

    assert code == 1, output
    assert (
        f"{drop.name} (revision d00000000002) drops table teams, which the"
        " running release still maps" in output
    ), output
    # Retired for a release (no class maps it), then dropped: accepted.
    development = project.app(SQLALCHEMY_DATABASE_URI=project.development_url)
    project.downgrade(development, "a00000000001")
    drop.unlink()
    project.set_models(MAPPED + TEAMS_RETIRED)
    release(project, "release N+1, retiring teams")
    project.autogenerate(MAPPED, "drop teams", rev_id="e00000000003")
    assert check(project, environment, capsys)[0] == 0


def test_a_running_release_git_cannot_find_is_refused(
    make_mini_project: Callable[..., MiniProject],
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_mini_project(models=MAPPED)
    project.autogenerate(MAPPED, "users", rev_id="a00000000001")
    release(project, "release N")

    code, output = check(project, environment, capsys, base="origin/main")

    assert code == 2, output
    assert (
        "git cannot find 'origin/main' (and its merge base with HEAD) here, so"
        " the running release is unknown." in output
    ), output
    assert "Traceback" not in output


def test_the_drop_is_accepted_when_its_revision_acknowledges_the_errors(
    make_mini_project: Callable[..., MiniProject],
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_mini_project(models=MAPPED)
    project.autogenerate(MAPPED, "users", rev_id="a00000000001")
    release(project, "release N")
    drop = project.autogenerate(DROPPED, "drop users.name", rev_id="d00000000002")
    text = drop.read_text()
    # The review's own acknowledgement of the data loss is not enough.
    drop.write_text(text + '\nACKNOWLEDGED = ["drop column users.name"]\n')
    assert check(project, environment, capsys)[0] == 1
    drop.write_text(
        text + "\nACKNOWLEDGED = [\n    'drop column users.name',\n"
        "    'drop column users.name while the running release maps it',\n]\n"
    )

    code, output = check(project, environment, capsys)

    assert code == 0, output


def test_a_column_retired_in_the_running_release_may_be_dropped(
    make_mini_project: Callable[..., MiniProject],
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_mini_project(models=MAPPED)
    project.autogenerate(MAPPED, "users", rev_id="a00000000001")
    release(project, "release N-1")
    # Release N retires it: the table keeps the column, made nullable.
    retire = project.autogenerate(RETIRED, "retire users.name", rev_id="b00000000002")
    assert "nullable=True" in retire.read_text()
    assert "drop_column" not in retire.read_text()
    code, output = check(project, environment, capsys)
    assert code == 0, output
    release(project, "release N")
    git(project.root, "checkout", "--quiet", "-b", "change")
    project.autogenerate(DROPPED, "drop users.name", rev_id="c00000000003")

    code, output = check(project, environment, capsys)

    assert code == 0, output
    assert "Nothing the running release (main at" in output


def test_a_retired_not_null_column_without_a_default_is_flagged(
    make_mini_project: Callable[..., MiniProject],
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_mini_project(models=MAPPED)
    project.autogenerate(MAPPED, "users", rev_id="a00000000001")
    release(project, "release N-1")
    # Unmapped, still NOT NULL: autogenerate sees nothing to change.
    project.set_models(RETIRED_NOT_NULL)

    code, output = check(project, environment, capsys)

    assert code == 1, output
    assert (
        "users.name is retired (not mapped) but NOT NULL without a default:"
        " inserts, which leave it out, fail" in output
    ), output
    # A server default is as good as nullable.
    project.set_models(
        RETIRED_NOT_NULL.replace(
            "unmapped_column(sa.String(100))",
            "unmapped_column(sa.String(100), server_default='')",
        )
    )
    assert check(project, environment, capsys)[0] == 0


def test_the_migration_test_flags_a_retired_not_null_column_without_a_default(
    pytester: pytest.Pytester, environment: pytest.MonkeyPatch
) -> None:
    environment.setenv("CI", "")
    with project_in(pytester, models=MAPPED, revisions={}) as project:
        project.autogenerate(MAPPED, "users", rev_id="a00000000001")
        keyword = "test_retired_columns_accept_inserts"
        assert migration_tests(pytester, project, keyword)[0] == 0
        project.set_models(RETIRED_NOT_NULL)

        code, report = migration_tests(pytester, project, keyword)

    assert code == 1, report
    assert (
        "users.name is retired (not mapped) but NOT NULL without a default" in report
    ), report


def models_app(project: MiniProject, models: str) -> tuple[Flask, Any]:
    """An app of the release whose models are ``models``, and its User class
    (kept usable after the next release's models replace them)."""
    project.set_models(models)
    app = project.app()
    return app, project.module("models").User


@pytest.mark.parametrize(
    ("retired", "change"),
    [(RETIRED, "nullable=True"), (RETIRED_WITH_DEFAULT, "server_default=")],
    ids=["nullable", "server-default"],
)
def test_retire_then_drop_keeps_the_rows_and_the_previous_release_working(
    database_url: str,
    make_mini_project: Callable[..., MiniProject],
    retired: str,
    change: str,
) -> None:
    project = make_mini_project(models=MAPPED, database_url=database_url)
    project.autogenerate(MAPPED, "users", rev_id="a00000000001")
    old, OldUser = models_app(project, MAPPED)
    project.upgrade(old)
    db = old.extensions["sqlalchemy"]
    with old.app_context():
        db.session.add_all(
            [OldUser(email=f"u{i}@example.com", name=f"User {i}") for i in range(3)]
        )
        db.session.commit()

    # Release N: its migration runs while release N-1 still serves.
    retire = project.autogenerate(retired, "retire users.name", rev_id="b00000000002")
    assert change in retire.read_text()
    new, NewUser = models_app(project, retired)
    project.upgrade(new)
    with old.app_context():
        assert running_release.missing_columns(db) == []
        db.session.add(OldUser(email="old@example.com", name="Old"))
        db.session.commit()
        names = db.session.scalars(sa.select(OldUser.name).order_by(OldUser.id))
        assert list(names) == ["User 0", "User 1", "User 2", "Old"]
    new_db = new.extensions["sqlalchemy"]
    with new.app_context():
        new_db.session.add(NewUser(email="new@example.com"))
        new_db.session.commit()

    # Release N+1: drops it, while release N serves.
    project.autogenerate(DROPPED, "drop users.name", rev_id="c00000000003")
    newest, _ = models_app(project, DROPPED)
    project.upgrade(newest)
    with new.app_context():
        assert running_release.missing_columns(new_db) == []
        new_db.session.add(NewUser(email="newer@example.com"))
        new_db.session.commit()
        emails = new_db.session.scalars(sa.select(NewUser.email).order_by(NewUser.id))
        assert list(emails) == [
            *(f"u{i}@example.com" for i in range(3)),
            "old@example.com",
            "new@example.com",
            "newer@example.com",
        ]
    # Release N-1 would fail now: it was no longer running.
    with old.app_context():
        assert running_release.missing_columns(db) == ["users.name"]


def test_db_status_is_not_ready_when_the_database_lacks_a_column_the_code_maps(
    database_url: str,
    make_mini_project: Callable[..., MiniProject],
) -> None:
    project = make_mini_project(models=MAPPED, database_url=database_url)
    project.autogenerate(MAPPED, "users", rev_id="a00000000001")
    # A newer release dropped the column in one step, and this release (which
    # maps it) still runs against its database.
    drop = project.autogenerate(DROPPED, "drop users.name", rev_id="d00000000002")
    project.upgrade(project.app())
    drop.unlink()
    app, _ = models_app(project, MAPPED)

    status = project.flask(app, "db-status")

    output = " ".join(status.output.split())
    assert status.exit_code == 1, output
    assert (
        "The database is at revision d00000000002, which this code does not have,"
        " and lacks columns this code maps: users.name." in output
    ), output
