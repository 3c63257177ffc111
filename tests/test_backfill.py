"""The batched backfill that migrations/README teaches, as written there: it
fills every row on SQLite, PostgreSQL and MariaDB, with more rows than one
batch, and `flask db upgrade --sql` prints it as one UPDATE (the earlier
pattern read .rowcount, which --sql has not)."""

import re
import textwrap
from collections.abc import Callable
from pathlib import Path

from .helpers import run

NICKNAME = "    nickname: Mapped[str | None] = mapped_column(String(100))\n"
NAME = "    name: Mapped[str] = mapped_column(String(100))\n"

# Runs in the project's environment: for each database URL, upgrade to the
# revision before the backfill, insert rows, upgrade, count what is filled.
DRIVE = """
import sys

import sqlalchemy as sa
from flask_migrate import upgrade

from my_flask_app import create_app
from my_flask_app.extensions import db

before, *urls = sys.argv[1:]
for url in urls:
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(revision=before)
        users = sa.table(
            "users", sa.column("email"), sa.column("name"), sa.column("nickname")
        )
        with db.engine.begin() as connection:
            connection.execute(
                users.insert(),
                [{"email": f"u{i}@example.com", "name": f"n{i}"} for i in range(2345)],
            )
        upgrade()
        with db.engine.connect() as connection:
            print(
                connection.execute(
                    sa.select(sa.func.count()).where(users.c.nickname == users.c.name)
                ).scalar(),
                connection.execute(
                    sa.select(sa.func.count()).where(users.c.nickname.is_(None))
                ).scalar(),
            )
        db.engine.dispose()
"""


def readme_backfill(project: Path) -> str:
    """The backfill's upgrade() from the project's migrations/README."""
    readme = (project / "migrations" / "README").read_text()
    block = re.search(r"\n(    def upgrade\(\) -> None:\n(?:    .*\n|\n)+)", readme)
    assert block, "no backfill in migrations/README"
    return textwrap.dedent(block.group(1)).rstrip() + "\n"


def test_the_readme_backfill_fills_every_row_on_every_engine_and_prints_sql(
    fresh_project: Callable[..., Path],
    project_env: Path,
    make_database: Callable[[str], str],
) -> None:
    project = fresh_project()
    user = project / "my_flask_app" / "models" / "user.py"
    user.write_text(user.read_text().replace(NAME, NAME + NICKNAME))
    versions = project / "migrations" / "versions"
    run(project, project_env, "flask", "db", "upgrade")
    run(project, project_env, "flask", "db", "migrate", "-m", "add nickname")
    (added,) = [p for p in versions.glob("*.py") if "add_nickname" in p.name]
    before = re.search(r'^revision: str = "(\w+)"', added.read_text(), re.M)
    assert before
    run(project, project_env, "flask", "db", "revision", "-m", "backfill nicknames")
    (backfill,) = [p for p in versions.glob("*.py") if "backfill" in p.name]
    script = backfill.read_text()
    script = script.replace("from alembic import op", "from alembic import context, op")
    script = re.sub(
        r"def upgrade\(\) -> None:\n(    .*\n)+",
        readme_backfill(project),
        script,
        count=1,
    )
    backfill.write_text(script)
    run(project, project_env, "ruff", "check", str(backfill))

    urls = [
        f"sqlite:///{project / 'instance' / 'backfill.db'}",
        make_database("postgresql"),
        make_database("mysql"),
    ]
    result = run(project, project_env, "python", "-c", DRIVE, before.group(1), *urls)
    # Three batches of at most 1000 on each engine, every row filled.
    assert result.stdout.split("\n")[:3] == ["2345 0"] * 3, result.stdout

    sql = run(
        project,
        project_env,
        "flask",
        "db",
        "upgrade",
        "--sql",
        f"{before.group(1)}:head",
        DATABASE_URL=urls[1],
    ).stdout
    assert "UPDATE users SET nickname=users.name WHERE users.nickname IS NULL" in sql
