"""The batched backfill that migrations/README teaches, as written there: it
fills every row on SQLite, PostgreSQL and MariaDB, with more rows than one
batch, and `flask db upgrade --sql` prints it as one UPDATE (the earlier
pattern read .rowcount, which --sql has not). In-process, on a MiniProject
with the template's User model."""

import re
import subprocess
import sys
import textwrap
from collections.abc import Callable

import sqlalchemy as sa
from alembic import command

from ..helpers import ROOT
from .generated_suite import NAME, USER, add_template_ruff_settings, with_users
from .miniproject import MiniProject

NICKNAME = "    nickname: Mapped[str | None] = mapped_column(sa.String(100))\n"


def readme_backfill() -> str:
    """The backfill's upgrade() from the template's migrations/README."""
    readme = (ROOT / "template" / "migrations" / "README.jinja").read_text()
    block = re.search(r"\n(    def upgrade\(\) -> None:\n(?:    .*\n|\n)+)", readme)
    assert block, "no backfill in migrations/README"
    return textwrap.dedent(block.group(1)).rstrip() + "\n"


def test_the_readme_backfill_fills_every_row_on_every_engine_and_prints_sql(
    make_database: Callable[[str], str],
    make_mini_project: Callable[..., MiniProject],
) -> None:
    servers = [make_database("postgresql"), make_database("mysql")]
    project = make_mini_project()
    add_template_ruff_settings(project)
    with_users(project)
    added = project.autogenerate(USER.replace(NAME, NAME + NICKNAME), "add nickname")
    before = re.search(r'^revision: str = "(\w+)"', added.read_text(), re.M)
    assert before
    app = project.app()
    with app.app_context():
        command.revision(project.alembic_config(app), "backfill nicknames")
    (backfill,) = [p for p in project.revisions() if "backfill" in p.name]
    script = backfill.read_text()
    script = script.replace("from alembic import op", "from alembic import context, op")
    script = re.sub(
        r"def upgrade\(\) -> None:\n(    .*\n)+", readme_backfill(), script, count=1
    )
    backfill.write_text(script)
    subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(backfill)],
        cwd=project.root,
        check=True,
    )

    users = sa.table(
        "users", sa.column("email"), sa.column("name"), sa.column("nickname")
    )
    filled = []
    for url in [f"sqlite:///{project.root / 'backfill.db'}", *servers]:
        app = project.app(SQLALCHEMY_DATABASE_URI=url)
        project.upgrade(app, before.group(1))
        db = app.extensions["sqlalchemy"]
        with app.app_context(), db.engine.begin() as connection:
            connection.execute(
                users.insert(),
                [{"email": f"u{i}@example.com", "name": f"n{i}"} for i in range(2345)],
            )
        project.upgrade(app)
        with app.app_context(), db.engine.connect() as connection:
            filled.append(
                (
                    connection.execute(
                        sa.select(sa.func.count()).where(
                            users.c.nickname == users.c.name
                        )
                    ).scalar(),
                    connection.execute(
                        sa.select(sa.func.count()).where(users.c.nickname.is_(None))
                    ).scalar(),
                )
            )
    # Three batches of at most 1000 on each engine, every row filled.
    assert filled == [(2345, 0)] * 3

    app = project.app(SQLALCHEMY_DATABASE_URI=servers[0])
    result = project.flask(app, "db", "upgrade", "--sql", f"{before.group(1)}:head")
    assert result.exit_code == 0, result.output
    assert (
        "UPDATE users SET nickname=users.name WHERE users.nickname IS NULL"
        in result.stdout
    )
