"""The workflow the generated README teaches, end to end on SQLite, on a
MiniProject with the template's User model: change a model, `flask db
migrate`, read the script, `flask db upgrade`, and no row is lost on the way
up or down."""

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from .generated_suite import (
    INITIAL_REVISION,
    NAME,
    USER,
    add_template_ruff_settings,
    with_users,
)
from .miniproject import MiniProject

POSTS = """

class Post(Model):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(sa.String(200))
"""
NICKNAME = (
    "    nickname: Mapped[str | None] = mapped_column(sa.String(50), unique=True)\n"
)


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


def ruff(project: MiniProject, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "ruff", *args], cwd=project.root, check=True)


def test_model_change_migrates_without_losing_a_row(
    mini_project: MiniProject,
) -> None:
    project = mini_project
    add_template_ruff_settings(project)
    with_users(project)
    database = project.root / "app.db"
    project.upgrade(project.app())

    # A second table whose rows point at users, deleted with them (CASCADE).
    project.set_models(USER + POSTS)
    app = project.app()
    posts_revision = project.migrate(app, "add posts")
    assert posts_revision is not None
    assert 'op.f("fk_posts_user_id_users")' in posts_revision.read_text()
    project.upgrade(app)

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
    project.set_models(USER.replace(NAME, NAME + NICKNAME) + POSTS)
    app = project.app()
    before = set(project.revisions())
    result = project.flask(app, "db", "migrate", "-m", "add nickname to users")
    assert result.exit_code == 0, result.output

    (revision,) = set(project.revisions()) - before
    script = revision.read_text()
    assert "add_nickname_to_users" in revision.name
    # Names sort by date (to the second: both revisions may share one).
    stamp = re.compile(r"\d{4}_\d\d_\d\d_\d{6}-")
    assert stamp.match(revision.name) and stamp.match(posts_revision.name)
    assert revision.name[:17] >= posts_revision.name[:17]
    assert "Detected added column 'users.nickname'" in result.output
    assert 'with op.batch_alter_table("users", schema=None) as batch_op:' in script
    assert 'batch_op.add_column(sa.Column("nickname"' in script
    assert (
        'batch_op.create_unique_constraint(batch_op.f("uq_users_nickname"),'
        ' ["nickname"])' in script
    )
    assert f'down_revision: str | None = "{revision_id(posts_revision)}"' in script
    ruff(project, "check", "--no-cache", str(revision))
    ruff(project, "format", "--no-cache", "--check", str(revision))

    project.upgrade(app)

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
    project.check(app)  # `flask db check`: no difference

    project.downgrade(app)

    assert "nickname" not in table_sql(database, "users")
    assert (
        rows(database, "SELECT id, email, name, created_at FROM users") == users_before
    )
    assert rows(database, "SELECT * FROM posts ORDER BY id") == posts_before

    project.upgrade(app)
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
    mini_project: MiniProject,
) -> None:
    """Foreign keys are off while migrations run on SQLite; the check before each
    commit still refuses what PostgreSQL would refuse."""
    project = mini_project
    with_users(project)
    database = project.root / "app.db"
    (project.versions_dir / "2026_11_22_000000-0ffe0ffe0ffe_posts.py").write_text(
        ORPHAN_REVISION
    )

    result = project.flask(project.app(), "db", "upgrade")

    assert result.exit_code != 0
    assert (
        "Migration 0ffe0ffe0ffe leaves 1 row(s) whose foreign key points at no row"
        in result.stderr
    )
    assert "posts row 1 -> users" in result.stderr
    assert rows(database, "SELECT version_num FROM alembic_version") == [
        (INITIAL_REVISION,)
    ]
    assert rows(database, "SELECT name FROM sqlite_master WHERE name = 'posts'") == []
