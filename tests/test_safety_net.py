"""The safety net for autogenerate: destructive operations and likely renames
are flagged when `flask db migrate` writes them, and the generated migration
tests refuse unacknowledged data loss. No false alarm on a pure addition."""

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from .helpers import run, run_tests
from .servers import Server, engine

NAME = "    name: Mapped[str] = mapped_column(String(100))\n"
EMAIL = "    email: Mapped[str] = mapped_column(String(255), unique=True)\n"
INITIAL_REVISION = "3f1a9c2b7d40"


def edit_model(project: Path, old: str, new: str) -> None:
    model = project / "my_flask_app" / "models" / "user.py"
    text = model.read_text()
    assert old in text
    model.write_text(text.replace(old, new))


def migrate(project: Path, venv: Path, message: str) -> tuple[str, Path]:
    """`flask db migrate` at the head; its terminal output and the new revision."""
    versions = project / "migrations" / "versions"
    before = set(versions.glob("*.py"))
    result = run(project, venv, "flask", "db", "migrate", "-m", message)
    (revision,) = set(versions.glob("*.py")) - before
    return result.stdout + result.stderr, revision


def migration_tests(
    project: Path, venv: Path, *args: str, **env: str
) -> tuple[int, str]:
    result = run_tests(
        project, venv, "tests/test_migrations.py", *args, check=False, **env
    )
    return result.returncode, result.stdout


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


def rename_email_to_login(project: Path, venv: Path) -> tuple[str, Path]:
    run(project, venv, "flask", "db", "upgrade")
    edit_model(project, EMAIL, EMAIL.replace("email:", "login:"))
    return migrate(project, venv, "rename email to login")


def test_rename_is_flagged_refused_and_its_hint_keeps_values_and_uniqueness_on_sqlite(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project(database="sqlite")
    database = project / "instance" / "my_flask_app.db"
    run(project, project_env, "flask", "db", "upgrade")
    with sqlite3.connect(database) as connection:
        connection.executemany(
            "INSERT INTO users (email, name) VALUES (?, ?)",
            [(f"u{n}@example.com", f"Name {n}") for n in range(100)],
        )
    emails = sorted(connection.execute("SELECT id, email FROM users").fetchall())

    output, revision = rename_email_to_login(project, project_env)

    # On the terminal: the loss, and the rename that avoids it.
    assert "Warning: the review flagged this revision." in output
    assert "  - DATA LOSS: drop column users.email" in output
    assert "Likely rename (column users.email -> users.login)." in output
    assert "new_column_name='login'" in output
    # In the script: the same, next to the operation, and the acknowledgement list.
    script = revision.read_text()
    assert "# DATA LOSS: drop column users.email." in script
    assert "# LIKELY RENAME in users: email -> login (dropped and added," in script
    assert '    # "drop column users.email",\n' in script
    # The generated migration tests refuse it.
    returncode, report = migration_tests(project, project_env)
    assert returncode != 0
    assert "rename_email_to_login.py: 'drop column users.email' (DATA LOSS)" in report

    apply_the_rename_hint(revision)

    assert migration_tests(project, project_env)[0] == 0
    run(project, project_env, "flask", "db", "upgrade")
    with sqlite3.connect(database) as connection:
        renamed = sorted(connection.execute("SELECT id, login FROM users").fetchall())
        assert renamed == emails
        # The unique constraint survived the rename (SQLite's batch rebuild
        # drops one created in the same block as the rename).
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            connection.execute(
                "INSERT INTO users (login, name) VALUES ('u1@example.com', 'Dup')"
            )
    run(project, project_env, "flask", "db", "check")
    run(project, project_env, "flask", "db", "downgrade")
    with sqlite3.connect(database) as connection:
        query = "SELECT id, email FROM users"
        assert sorted(connection.execute(query).fetchall()) == emails
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            connection.execute(
                "INSERT INTO users (email, name) VALUES ('u1@example.com', 'Dup')"
            )


def test_the_hinted_rename_keeps_values_and_uniqueness_on_the_server(
    server: Server,
    database: str,
    fresh_project: Callable[..., Path],
    project_env: Path,
) -> None:
    """Written on SQLite, applied to PostgreSQL and MariaDB."""
    project = fresh_project(database=server.engine)
    _, revision = rename_email_to_login(project, project_env)
    apply_the_rename_hint(revision)

    def flask(*args: str) -> None:
        run(project, project_env, "flask", *args, DATABASE_URL=database)

    flask("db", "upgrade", INITIAL_REVISION)
    bind = engine(database)
    with bind.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO users (email, name) VALUES (:email, :name)"),
            [{"email": f"u{n}@example.com", "name": f"Name {n}"} for n in range(100)],
        )
        emails = sorted(connection.execute(sa.text("SELECT id, email FROM users")))

    flask("db", "upgrade")

    duplicate = "INSERT INTO users ({}, name) VALUES ('u1@example.com', 'Dup')"
    with bind.connect() as connection:
        query = sa.text("SELECT id, login FROM users")
        assert sorted(connection.execute(query).all()) == emails
        with pytest.raises(sa.exc.IntegrityError):
            connection.execute(sa.text(duplicate.format("login")))
    flask("db", "check")
    flask("db", "downgrade", INITIAL_REVISION)
    with bind.connect() as connection:
        query = sa.text("SELECT id, email FROM users")
        assert sorted(connection.execute(query).all()) == emails
        with pytest.raises(sa.exc.IntegrityError):
            connection.execute(sa.text(duplicate.format("email")))
    bind.dispose()


def test_dropped_column_is_flagged_and_passes_once_acknowledged(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    run(project, project_env, "flask", "db", "upgrade")
    edit_model(project, NAME, "")

    output, revision = migrate(project, project_env, "drop user names")

    assert "  - DATA LOSS: drop column users.name" in output
    assert "Likely rename" not in output
    assert migration_tests(project, project_env)[0] != 0
    revision.write_text(
        revision.read_text().replace(
            '    # "drop column users.name",\n', '    "drop column users.name",\n'
        )
    )
    # The downgrade adds the column back to rows that have no value for it.
    assert migration_tests(project, project_env)[0] != 0
    revision.write_text(
        revision.read_text().replace(
            "nullable=False)", "nullable=False, server_default='')"
        )
    )
    assert migration_tests(project, project_env)[0] == 0


def test_pure_addition_is_not_flagged(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    run(project, project_env, "flask", "db", "upgrade")
    edit_model(
        project,
        NAME,
        NAME + "    bio: Mapped[str | None] = mapped_column(String(500))\n",
    )

    output, revision = migrate(project, project_env, "add bios")

    assert "Warning" not in output
    assert "Likely rename" not in output
    script = revision.read_text()
    assert "DATA LOSS" not in script
    assert "ACKNOWLEDGED: list[str]" not in script
    assert migration_tests(project, project_env)[0] == 0


def test_narrowing_a_type_is_flagged_and_widening_is_not(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    run(project, project_env, "flask", "db", "upgrade")
    edit_model(project, "String(100)", "String(50)")

    output, narrowing = migrate(project, project_env, "shorter names")

    assert (
        "  - DATA LOSS: change type of users.name from VARCHAR(length=100) to"
        " String(length=50)" in output
    )
    assert migration_tests(project, project_env)[0] != 0
    narrowing.unlink()
    edit_model(project, "String(50)", "String(200)")

    output, _ = migrate(project, project_env, "longer names")

    assert "Warning" not in output
    assert migration_tests(project, project_env)[0] == 0


def test_renamed_table_gets_the_rename_table_hint(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    run(project, project_env, "flask", "db", "upgrade")
    edit_model(project, '__tablename__ = "users"', '__tablename__ = "accounts"')

    output, revision = migrate(project, project_env, "rename users to accounts")

    assert "  - DATA LOSS: drop table users" in output
    assert "Likely rename (table users -> accounts)." in output
    assert "op.rename_table('users', 'accounts')" in output
    assert "#     op.rename_table('users', 'accounts')" in revision.read_text()


HAND_WRITTEN = '''\
"""drop the users table, by hand"""

from alembic import op

revision = "0dd0dd0dd0dd"
down_revision = "3f1a9c2b7d40"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("users")


def downgrade() -> None:
    raise NotImplementedError
'''


def test_hand_written_destruction_is_refused_too(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    revision = project / "migrations/versions/2026_11_22_000000-0dd0dd0dd0dd_drop.py"
    revision.write_text(HAND_WRITTEN)

    returncode, report = migration_tests(project, project_env)

    assert returncode != 0
    assert "0dd0dd0dd0dd_drop.py: 'drop table users' (DATA LOSS)" in report
    # The list's name before the review flagged more than data loss still works.
    revision.write_text(
        HAND_WRITTEN.replace(
            "depends_on = None\n",
            'depends_on = None\nACKNOWLEDGED_DATA_LOSS = ["drop table users"]\n',
        )
    )
    assert migration_tests(project, project_env, "-k", "acknowledged")[0] == 0
