"""The safety net for autogenerate: destructive operations and likely renames
are flagged when `flask db migrate` writes them, and the generated migration
tests refuse unacknowledged data loss. No false alarm on a pure addition."""

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from .helpers import run, run_tests
from .servers import Server, engine

NAME = "    name: Mapped[str] = mapped_column(String(100))\n"
INITIAL_REVISION = "3f1a9c2b7d40"
DOWNGRADE_RENAME = """

def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "full_name",
            existing_type=sa.String(length=100),
            new_column_name="name",
            existing_nullable=False,
        )
"""


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


def migration_tests(project: Path, venv: Path) -> tuple[int, str]:
    result = run_tests(project, venv, "tests/test_migrations.py", check=False)
    return result.returncode, result.stdout


def apply_the_rename_hint(revision: Path) -> None:
    """What the user does: take the suggested code from the revision's comments
    as the upgrade, write the reverse rename as the downgrade, drop the rest."""
    text = revision.read_text()
    hint = re.search(r"which keeps the data:\n((?:\s*#     .*\n)+)", text)
    assert hint, text
    code = [re.sub(r"^\s*#     ", "", line) for line in hint.group(1).splitlines()]
    head = text[: text.index("def upgrade() -> None:")]
    head = re.sub(
        r"# THIS REVISION DESTROYS DATA.*?\n\]\n\n", "", head, flags=re.DOTALL
    )
    revision.write_text(
        head
        + "def upgrade() -> None:\n"
        + '    with op.batch_alter_table("users", schema=None) as batch_op:\n'
        + "".join(f"        {line}\n" for line in code)
        + DOWNGRADE_RENAME
    )


def rename_name_to_full_name(project: Path, venv: Path) -> tuple[str, Path]:
    run(project, venv, "flask", "db", "upgrade")
    edit_model(project, NAME, NAME.replace("name:", "full_name:"))
    return migrate(project, venv, "rename name to full_name")


def test_rename_is_flagged_refused_and_its_hint_keeps_every_value_on_sqlite(
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
    names = sorted(connection.execute("SELECT id, name FROM users").fetchall())

    output, revision = rename_name_to_full_name(project, project_env)

    # On the terminal: the loss, and the rename that avoids it.
    assert (
        "Warning: this revision destroys data. Review it before committing:" in output
    )
    assert "  - drop column users.name" in output
    assert "Likely rename (column users.name -> users.full_name)." in output
    assert "new_column_name='full_name'" in output
    # In the script: the same, next to the operation, and the acknowledgement list.
    script = revision.read_text()
    assert "# DATA LOSS: drop column users.name." in script
    assert (
        "# LIKELY RENAME: users.name was dropped and users.full_name added," in script
    )
    assert '    # "drop column users.name",\n' in script
    # The generated migration tests refuse it.
    returncode, report = migration_tests(project, project_env)
    assert returncode != 0
    assert "rename_name_to_full_name.py: drop column users.name" in report

    apply_the_rename_hint(revision)

    assert migration_tests(project, project_env)[0] == 0
    run(project, project_env, "flask", "db", "upgrade")
    with sqlite3.connect(database) as connection:
        renamed = sorted(
            connection.execute("SELECT id, full_name FROM users").fetchall()
        )
    assert renamed == names
    run(project, project_env, "flask", "db", "check")
    run(project, project_env, "flask", "db", "downgrade")
    with sqlite3.connect(database) as connection:
        assert (
            sorted(connection.execute("SELECT id, name FROM users").fetchall()) == names
        )


def test_the_hinted_rename_keeps_every_value_on_the_server(
    server: Server,
    database: str,
    fresh_project: Callable[..., Path],
    project_env: Path,
) -> None:
    """Written on SQLite, applied to PostgreSQL and MariaDB."""
    project = fresh_project(database=server.engine)
    _, revision = rename_name_to_full_name(project, project_env)
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
        names = sorted(connection.execute(sa.text("SELECT id, name FROM users")).all())

    flask("db", "upgrade")

    with bind.connect() as connection:
        query = sa.text("SELECT id, full_name FROM users")
        assert sorted(connection.execute(query).all()) == names
    flask("db", "check")
    flask("db", "downgrade", INITIAL_REVISION)
    with bind.connect() as connection:
        query = sa.text("SELECT id, name FROM users")
        assert sorted(connection.execute(query).all()) == names
    bind.dispose()


def test_dropped_column_is_flagged_and_passes_once_acknowledged(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    run(project, project_env, "flask", "db", "upgrade")
    edit_model(project, NAME, "")

    output, revision = migrate(project, project_env, "drop user names")

    assert "  - drop column users.name" in output
    assert "Likely rename" not in output
    assert migration_tests(project, project_env)[0] != 0
    revision.write_text(
        revision.read_text().replace(
            '    # "drop column users.name",\n', '    "drop column users.name",\n'
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
    assert "ACKNOWLEDGED_DATA_LOSS: list[str]" not in script
    assert migration_tests(project, project_env)[0] == 0


def test_narrowing_a_type_is_flagged_and_widening_is_not(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    run(project, project_env, "flask", "db", "upgrade")
    edit_model(project, "String(100)", "String(50)")

    output, narrowing = migrate(project, project_env, "shorter names")

    assert (
        "  - change type of users.name from VARCHAR(length=100) to String(length=50)"
        in output
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

    assert "  - drop table users" in output
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
    assert "0dd0dd0dd0dd_drop.py: drop table users" in report
