"""The safety net for autogenerate, in-process on a MiniProject: destructive
operations and likely renames are flagged when `flask db migrate` writes them,
and the migration tests (run by pytester, as a project runs them) refuse
unacknowledged data loss. No false alarm on a pure addition. The hinted rename
keeps the values and the unique constraint, with rows, on SQLite, PostgreSQL
and MariaDB."""

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from .generated_suite import (
    EMAIL,
    INITIAL_REVISION,
    NAME,
    USER,
    add_initial_revision,
    initial_revision,
    migration_tests,
    project_in,
    terminal,
)
from .miniproject import MiniProject

pytest_plugins = ["pytester"]


def migrate(project: MiniProject, models: str, message: str) -> tuple[str, Path]:
    """Set the models and run `flask db migrate` on the development database,
    at the newest revision: what it printed, and the revision it wrote."""
    project.set_models(models)
    app = project.app(SQLALCHEMY_DATABASE_URI=project.development_url)
    project.upgrade(app)
    with terminal() as output:
        revision = project.migrate(app, message)
    assert revision is not None
    return output.getvalue(), revision


def apply_the_rename_hint(revision: Path) -> None:
    """What the user does: replace upgrade()'s and downgrade()'s batch block with
    the code their LIKELY RENAME comment gives, and acknowledge what the review
    listed at the top."""
    text = revision.read_text()
    for function in ("upgrade", "downgrade"):
        start = text.index(f"def {function}() -> None:")
        end = text.find("\ndef ", start)
        end = len(text) if end < 0 else end
        hint = re.search(
            r"created on the renamed column\.\n((?:\s*#     .*\n)+)", text[start:end]
        )
        assert hint, text
        code = [re.sub(r"^\s*#     ", "", line) for line in hint.group(1).splitlines()]
        body = "".join(f"    {line}\n" for line in code)
        text = f"{text[:start]}def {function}() -> None:\n{body}\n{text[end:]}"
    revision.write_text(re.sub(r'^    # (".*",)$', r"    \1", text, flags=re.MULTILINE))


RENAMED = USER.replace(EMAIL, EMAIL.replace("email:", "login:"))
DUPLICATE = "INSERT INTO users ({}, name) VALUES ('u1@example.com', 'Dup')"


def insert_users(app: Flask) -> list[tuple[int, str]]:
    """100 users; their (id, email), sorted."""
    with app.app_context():
        bind = app.extensions["sqlalchemy"].engine
        with bind.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO users (email, name) VALUES (:email, :name)"),
                [
                    {"email": f"u{n}@example.com", "name": f"Name {n}"}
                    for n in range(100)
                ],
            )
            return sorted(connection.execute(sa.text("SELECT id, email FROM users")))


def assert_renamed_and_unique(app: Flask, column: str, values: object) -> None:
    """``column`` holds the emails, and still refuses a duplicate."""
    with app.app_context(), app.extensions["sqlalchemy"].engine.connect() as c:
        query = sa.text(f"SELECT id, {column} FROM users")
        assert sorted(c.execute(query).all()) == values
        # The unique constraint survived the rename (SQLite's batch rebuild
        # drops one created in the same block as the rename).
        with pytest.raises(sa.exc.IntegrityError, match=r"(?i)unique|duplicate"):
            c.execute(sa.text(DUPLICATE.format(column)))


def test_rename_is_flagged_refused_and_its_hint_keeps_values_and_uniqueness_on_sqlite(
    pytester: pytest.Pytester,
) -> None:
    with project_in(pytester, production_engine="sqlite") as project:
        app = project.app()
        project.upgrade(app)
        emails = insert_users(app)

        output, revision = migrate(project, RENAMED, "rename email to login")

        # On the terminal: the loss, and the rename that avoids it.
        assert "Warning: the review flagged this revision." in output
        assert "  - DATA LOSS: drop column users.email" in output
        assert "Likely rename (column users.email -> users.login)." in output
        assert "new_column_name='login'" in output
        # In the script: the same, next to the operation, and the list.
        script = revision.read_text()
        assert "# DATA LOSS: drop column users.email." in script
        assert "# LIKELY RENAME in users: email -> login (dropped and added," in script
        assert '    # "drop column users.email",\n' in script
        # The migration tests refuse it.
        returncode, report = migration_tests(pytester, project)
        assert returncode != 0
        assert (
            "rename_email_to_login.py: 'drop column users.email' (DATA LOSS)" in report
        )

        apply_the_rename_hint(revision)

        assert migration_tests(pytester, project)[0] == 0
        app = project.app()
        project.upgrade(app)
        assert_renamed_and_unique(app, "login", emails)
        project.check(app)
        project.downgrade(app)
        assert_renamed_and_unique(app, "email", emails)


def test_the_hinted_rename_keeps_values_and_uniqueness_on_the_server(
    database: str,
    make_mini_project: Callable[..., MiniProject],
) -> None:
    """Written on SQLite, applied to PostgreSQL and MariaDB."""
    project = make_mini_project(models=USER, database_url=database)
    add_initial_revision(project)
    _, revision = migrate(project, RENAMED, "rename email to login")
    apply_the_rename_hint(revision)
    app = project.app()
    project.upgrade(app, INITIAL_REVISION)
    emails = insert_users(app)

    project.upgrade(app)

    assert_renamed_and_unique(app, "login", emails)
    project.check(app)
    project.downgrade(app, INITIAL_REVISION)
    assert_renamed_and_unique(app, "email", emails)


def test_dropped_column_is_flagged_and_passes_once_acknowledged(
    pytester: pytest.Pytester,
) -> None:
    with project_in(pytester) as project:
        output, revision = migrate(project, USER.replace(NAME, ""), "drop names")

        assert "  - DATA LOSS: drop column users.name" in output
        assert "Likely rename" not in output
        assert migration_tests(pytester, project)[0] != 0
        revision.write_text(
            revision.read_text().replace(
                '    # "drop column users.name",\n', '    "drop column users.name",\n'
            )
        )
        # The downgrade adds the column back to rows that have no value for it.
        returncode, report = migration_tests(pytester, project)
        assert returncode != 0
        assert "Downgrading from" in report, report
        revision.write_text(
            revision.read_text().replace(
                "nullable=False)", "nullable=False, server_default='')"
            )
        )
        assert migration_tests(pytester, project)[0] == 0


def test_pure_addition_is_not_flagged(pytester: pytest.Pytester) -> None:
    bio = "    bio: Mapped[str | None] = mapped_column(sa.String(500))\n"
    with project_in(pytester) as project:
        output, revision = migrate(project, USER.replace(NAME, NAME + bio), "bios")

        assert "Warning" not in output
        assert "Likely rename" not in output
        script = revision.read_text()
        assert "DATA LOSS" not in script
        assert "ACKNOWLEDGED: list[str]" not in script
        assert migration_tests(pytester, project)[0] == 0


def test_narrowing_a_type_is_flagged_and_widening_is_not(
    pytester: pytest.Pytester,
) -> None:
    with project_in(pytester) as project:
        shorter = USER.replace("String(100)", "String(50)")
        output, narrowing = migrate(project, shorter, "shorter names")

        assert (
            "  - DATA LOSS: change type of users.name from VARCHAR(length=100) to"
            " String(length=50)" in output
        )
        assert migration_tests(pytester, project)[0] != 0
        narrowing.unlink()
        longer = USER.replace("String(100)", "String(200)")

        output, _ = migrate(project, longer, "longer names")

        assert "Warning" not in output
        assert migration_tests(pytester, project)[0] == 0


def test_renamed_table_gets_the_rename_table_hint(
    make_mini_project: Callable[..., MiniProject],
) -> None:
    project = make_mini_project(models=USER)
    add_initial_revision(project)
    accounts = USER.replace('__tablename__ = "users"', '__tablename__ = "accounts"')

    output, revision = migrate(project, accounts, "rename users to accounts")

    assert "  - DATA LOSS: drop table users" in output
    assert "Likely rename (table users -> accounts)." in output
    assert "op.rename_table('users', 'accounts')" in output
    assert "#     op.rename_table('users', 'accounts')" in revision.read_text()


HAND_WRITTEN = f'''\
"""drop the users table, by hand"""

from alembic import op

revision = "0dd0dd0dd0dd"
down_revision = "{INITIAL_REVISION}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("users")


def downgrade() -> None:
    raise NotImplementedError
'''


def test_hand_written_destruction_is_refused_too(pytester: pytest.Pytester) -> None:
    name = "2026_11_22_000000-0dd0dd0dd0dd_drop.py"
    with project_in(
        pytester, revisions={**initial_revision(), name: HAND_WRITTEN}
    ) as project:
        returncode, report = migration_tests(pytester, project)

        assert returncode != 0
        assert "0dd0dd0dd0dd_drop.py: 'drop table users' (DATA LOSS)" in report
        # The list's name before the review flagged more than data loss works.
        (project.versions_dir / name).write_text(
            HAND_WRITTEN.replace(
                "depends_on = None\n",
                'depends_on = None\nACKNOWLEDGED_DATA_LOSS = ["drop table users"]\n',
            )
        )
        assert migration_tests(pytester, project, "acknowledged")[0] == 0
