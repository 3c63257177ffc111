"""The workflow the generated README teaches, end to end on SQLite: change a
model, `flask db migrate`, read the script, `flask db upgrade`, and no row is
lost on the way up or down."""

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from .helpers import add_model, run

POST_MODEL = '''\
"""A post, written by a user."""

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Base


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
'''


def rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def table_sql(database: Path, table: str) -> str:
    (sql,) = rows(database, f"SELECT sql FROM sqlite_master WHERE name = '{table}'")[0]
    return str(sql)


def revision_id(script: Path) -> str:
    match = re.search(r'^revision: str = "(\w+)"$', script.read_text(), re.MULTILINE)
    assert match, script
    return match.group(1)


def new_revision(versions: Path, before: set[Path]) -> Path:
    (revision,) = set(versions.glob("*.py")) - before
    return revision


def test_model_change_migrates_without_losing_a_row(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    package = project / "my_flask_app"
    versions = project / "migrations" / "versions"
    database = project / "instance" / "my_flask_app.db"

    def flask(*args: str) -> str:
        result = run(project, project_env, "flask", *args)
        return result.stdout + result.stderr

    flask("db", "upgrade")

    # A second table whose rows point at users, deleted with them (CASCADE).
    add_model(project, "post", "Post", POST_MODEL)
    before = set(versions.glob("*.py"))
    flask("db", "migrate", "-m", "add posts")
    posts_revision = new_revision(versions, before)
    assert 'op.f("fk_posts_user_id_users")' in posts_revision.read_text()
    flask("db", "upgrade")

    with sqlite3.connect(database) as connection:
        connection.executemany(
            "INSERT INTO users (email, name) VALUES (?, ?)",
            [(f"user{n}@example.com", f"User {n}") for n in range(1, 51)],
        )
        connection.executemany(
            "INSERT INTO posts (user_id, title) VALUES (?, ?)",
            [(n, f"Post by {n}") for n in range(1, 51)],
        )
    users_before = rows(database, "SELECT id, email, name, created_at FROM users")
    posts_before = rows(database, "SELECT * FROM posts ORDER BY id")

    # The change: a new, unique column on users.
    user_model = package / "models" / "user.py"
    user_model.write_text(
        user_model.read_text().replace(
            "    name: Mapped[str] = mapped_column(String(100))\n",
            "    name: Mapped[str] = mapped_column(String(100))\n"
            "    nickname: Mapped[str | None] = mapped_column("
            "String(50), unique=True)\n",
        )
    )
    before = set(versions.glob("*.py"))
    output = flask("db", "migrate", "-m", "add nickname to users")

    revision = new_revision(versions, before)
    script = revision.read_text()
    assert "add_nickname_to_users" in revision.name
    assert sorted(versions.glob("*.py"))[-1] == revision, "names sort by date"
    assert "Detected added column 'users.nickname'" in output
    assert 'with op.batch_alter_table("users", schema=None) as batch_op:' in script
    assert 'batch_op.add_column(sa.Column("nickname"' in script
    assert (
        'batch_op.create_unique_constraint(batch_op.f("uq_users_nickname"),'
        ' ["nickname"])' in script
    )
    assert f'down_revision: str | None = "{revision_id(posts_revision)}"' in script
    run(project, project_env, "ruff", "check", "--no-cache", str(revision))
    run(project, project_env, "ruff", "format", "--no-cache", "--check", str(revision))

    flask("db", "upgrade")

    # SQLite rebuilt users to add the constraint: every row, and every post
    # pointing at one, is still there.
    assert "CONSTRAINT uq_users_nickname UNIQUE (nickname)" in table_sql(
        database, "users"
    )
    assert (
        rows(database, "SELECT id, email, name, created_at FROM users") == users_before
    )
    assert rows(database, "SELECT * FROM posts ORDER BY id") == posts_before
    assert rows(database, "PRAGMA foreign_key_check") == []
    assert "No new upgrade operations detected" in flask("db", "check")

    flask("db", "downgrade")

    assert "nickname" not in table_sql(database, "users")
    assert (
        rows(database, "SELECT id, email, name, created_at FROM users") == users_before
    )
    assert rows(database, "SELECT * FROM posts ORDER BY id") == posts_before

    flask("db", "upgrade")
    assert (
        rows(database, "SELECT id, email, name, created_at FROM users") == users_before
    )
    assert rows(database, "SELECT * FROM posts ORDER BY id") == posts_before


ORPHAN_REVISION = '''\
"""add posts, and one that points at no user"""

import sqlalchemy as sa
from alembic import op

revision = "0ffe0ffe0ffe"
down_revision = "3f1a9c2b7d40"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_posts_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    op.execute("INSERT INTO posts (id, user_id) VALUES (1, 999)")


def downgrade() -> None:
    op.drop_table("posts")
'''


def test_sqlite_migration_that_leaves_orphan_rows_is_rolled_back(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    """Foreign keys are off while migrations run on SQLite; the check before each
    commit still refuses what PostgreSQL would refuse."""
    project = fresh_project()
    database = project / "instance" / "my_flask_app.db"
    (
        project / "migrations/versions/2026_11_22_000000-0ffe0ffe0ffe_posts.py"
    ).write_text(ORPHAN_REVISION)

    result = run(project, project_env, "flask", "db", "upgrade", check=False)

    assert result.returncode != 0
    assert (
        "Migration 0ffe0ffe0ffe leaves 1 row(s) whose foreign key points at no row"
        in result.stderr
    )
    assert "posts row 1 -> users" in result.stderr
    assert rows(database, "SELECT version_num FROM alembic_version") == [
        ("3f1a9c2b7d40",)
    ]
    assert rows(database, "SELECT name FROM sqlite_master WHERE name = 'posts'") == []
