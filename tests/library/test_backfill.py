"""The batched backfill that migrations/README teaches (the library's
backfill()), as written there: it fills every row on SQLite, PostgreSQL and
MariaDB, with more rows than one batch, pausing between batches, keeping a row
the app filled meanwhile, and `flask db upgrade --sql` prints it as one UPDATE
(the earlier pattern read .rowcount, which --sql has not). In-process, on a
MiniProject with the template's User model."""

import logging
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic import command
from flask_safe_migrations import backfill, backfilling, timeouts

from ..helpers import ROOT
from ..servers import Server, engine
from ..test_databases import query
from .generated_suite import NAME, USER, add_template_ruff_settings, with_users
from .miniproject import MiniProject

NICKNAME = "    nickname: Mapped[str | None] = mapped_column(sa.String(100))\n"


def readme_backfill() -> str:
    """The backfill's upgrade() from the template's migrations/README."""
    readme = (ROOT / "template" / "migrations" / "README.jinja").read_text()
    block = re.search(r"\n(    def upgrade\(\) -> None:\n(?:    .*\n|\n)+)", readme)
    assert block, "no backfill in migrations/README"
    return textwrap.dedent(block.group(1)).rstrip() + "\n"


def backfill_project(
    make_mini_project: Callable[..., MiniProject], upgrade: str
) -> tuple[MiniProject, str]:
    """A project whose users table gained a nickname column, then a revision
    that fills it with ``upgrade`` (a def upgrade() block); returns the project
    and the revision before the backfill."""
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
    # As migrations/README says: the import, and no `op` when nothing uses it.
    assert "from alembic import op\n" in script
    script = script.replace(
        "from alembic import op\n", "from flask_safe_migrations import backfill\n"
    )
    script = re.sub(r"def upgrade\(\) -> None:\n(    .*\n)+", upgrade, script, count=1)
    backfill.write_text(script)
    subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(backfill)],
        cwd=project.root,
        check=True,
    )
    return project, before.group(1)


def add_users(bind: sa.Engine, ids: range = range(2345)) -> None:
    """Users to backfill (email u{i}@example.com, name n{i}, no nickname):
    by default more than two batches of 1000."""
    users = sa.table("users", sa.column("email"), sa.column("name"))
    with bind.begin() as connection:
        connection.execute(
            users.insert(),
            [{"email": f"u{i}@example.com", "name": f"n{i}"} for i in ids],
        )


def test_the_readme_backfill_fills_every_row_on_every_engine_and_prints_sql(
    make_database: Callable[[str], str],
    make_mini_project: Callable[..., MiniProject],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Batches of 1000 rows, a pause after each full one, and a row the app
    fills between its batch's SELECT and UPDATE keeps the app's value."""
    servers = [make_database("postgresql"), make_database("mysql")]
    project, before = backfill_project(make_mini_project, readme_backfill())
    pauses: list[float] = []
    monkeypatch.setattr(backfilling.time, "sleep", pauses.append)
    caplog.set_level(logging.INFO, logger="alembic.env")

    users = sa.table(
        "users",
        sa.column("id"),
        sa.column("email"),
        sa.column("name"),
        sa.column("nickname"),
    )
    app_writes: list[str] = []

    def app_fills_row_1(connection, cursor, statement, *args) -> None:
        """Before the backfill's first UPDATE, the app fills row 1 itself (on
        the servers: on SQLite the migration's lock keeps every writer out)."""
        sqlite = connection.dialect.name == "sqlite"
        if statement.startswith("UPDATE users") and not app_writes and not sqlite:
            app_writes.append(statement)
            with connection.engine.begin() as other:
                other.execute(
                    users.update().where(users.c.id == 1).values(nickname="app")
                )

    filled = []
    for url in [f"sqlite:///{project.root / 'backfill.db'}", *servers]:
        app = project.app(SQLALCHEMY_DATABASE_URI=url)
        project.upgrade(app, before)
        db = app.extensions["sqlalchemy"]
        with app.app_context():
            add_users(db.engine)
        pauses.clear(), app_writes.clear(), caplog.clear()
        sa.event.listen(sa.Engine, "before_cursor_execute", app_fills_row_1)
        try:
            project.upgrade(app)
        finally:
            sa.event.remove(sa.Engine, "before_cursor_execute", app_fills_row_1)
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
                    connection.execute(
                        sa.select(users.c.nickname).where(users.c.id == 1)
                    ).scalar(),
                )
            )
        # Two full batches, each followed by a pause as long as it took; none
        # after the last (345 rows).
        assert len(pauses) == 2 and all(pause > 0 for pause in pauses), pauses
        assert f"Backfilled {2345 - len(app_writes)} rows of users in" in caplog.text
    # Three batches of at most 1000 on each engine, every row filled, and on
    # the servers row 1 (filled by the app while the backfill ran) kept as the
    # app wrote it.
    assert filled == [(2345, 0, "n0"), (2344, 0, "app"), (2344, 0, "app")]

    app = project.app(SQLALCHEMY_DATABASE_URI=servers[0])
    result = project.flask(app, "db", "upgrade", "--sql", f"{before}:head")
    assert result.exit_code == 0, result.output
    assert (
        "UPDATE users SET nickname=users.name WHERE users.nickname IS NULL"
        in result.stdout
    )


def test_backfill_ends_when_rows_still_match_and_reports_progress(
    make_mini_project: Callable[..., MiniProject],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rows the update leaves matching ``where`` (here every odd id stays NULL)
    do not make it loop: it walks the key once. pause=0 does not pause, and a
    long backfill says how far it got. The loop is Python on every engine
    alike; SQLite is enough."""
    upgrade = """def upgrade() -> None:
    users = sa.table(
        "users", sa.column("id"), sa.column("name"), sa.column("nickname")
    )
    even = sa.case((users.c.id % 2 == 0, users.c.name), else_=sa.null())
    backfill(users, {"nickname": even}, users.c.nickname.is_(None), batch=100, pause=0)
"""
    project, before = backfill_project(make_mini_project, upgrade)
    pauses: list[float] = []
    monkeypatch.setattr(backfilling.time, "sleep", pauses.append)
    monkeypatch.setattr(backfilling, "PROGRESS_SECONDS", 0)
    caplog.set_level(logging.INFO, logger="alembic.env")
    app = project.app()
    project.upgrade(app, before)
    db = app.extensions["sqlalchemy"]
    with app.app_context():
        add_users(db.engine, range(1, 451))
    project.upgrade(app)
    assert pauses == [0.0] * 4  # after each of the four full batches
    assert "Backfilling users: 100 rows so far." in caplog.text
    # Every row updated once (the odd ones to NULL again), and no more.
    assert "Backfilled 450 rows of users in" in caplog.text
    with app.app_context(), db.engine.connect() as connection:
        nulls = connection.execute(
            sa.text("SELECT count(*) FROM users WHERE nickname IS NULL")
        ).scalar()
    assert nulls == 225


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            {"key": "uid"},
            "backfill(): users has no column 'uid' among sa.column('id'),"
            " sa.column('nickname'): add sa.column('uid') to its sa.table(...),"
            " or name its primary key with key=...",
        ),
        ({"batch": 0}, "backfill(batch=0): give a whole number of rows, 1 or more."),
        ({"batch": 1.5}, "backfill(batch=1.5): give a whole number"),
        ({"pause": -1}, "backfill(pause=-1): give a factor of 0 or more"),
    ],
)
def test_backfill_refuses_a_bad_call_saying_how_to_fix_it(
    call: dict[str, object], message: str
) -> None:
    users = sa.table("users", sa.column("id"), sa.column("nickname"))
    with pytest.raises(ValueError) as error:
        backfill(users, {"nickname": "x"}, users.c.nickname.is_(None), **call)  # type: ignore[arg-type]
    assert message in str(error.value)


def test_a_blocked_batch_gives_up_and_the_backfill_resumes_where_it_stopped(
    server: Server,
    database: str,
    make_mini_project: Callable[..., MiniProject],
    environment: pytest.MonkeyPatch,
) -> None:
    """A batch that waits for a row lock (a transaction left open on one row)
    gives up after the migration's lock timeout, naming the holder, instead of
    holding its own rows for as long: on PostgreSQL each batch runs in a
    transaction of its own with the timeouts SET LOCAL (autocommit alone has
    none). The batches before it stay filled, and once the lock is gone the
    same command fills the rest."""
    project, before = backfill_project(make_mini_project, readme_backfill())
    app = project.app(SQLALCHEMY_DATABASE_URI=database)
    project.upgrade(app, before)
    bind = engine(database)
    add_users(bind)
    environment.setenv("MIGRATION_LOCK_TIMEOUT", "1")
    environment.setenv("MIGRATION_LOCK_RETRIES", "1")
    environment.setattr(timeouts, "BACKOFF_SECONDS", 0.1)
    environment.setattr(backfilling.time, "sleep", lambda seconds: None)

    # Row 1500, in the second batch, locked by a transaction left open; it
    # lets go after a minute whatever happens (without the timeout, the
    # backfill waits for that).
    holder, release = bind.connect(), threading.Event()
    session = holder.execute(
        sa.text(
            "SELECT pg_backend_pid()"
            if server.engine == "postgresql"
            else "SELECT CONNECTION_ID()"
        )
    ).scalar_one()
    holder.execute(sa.text("UPDATE users SET name = 'held' WHERE id = 1500"))

    def hold() -> None:
        release.wait(60)
        holder.rollback()
        holder.close()

    holding = threading.Thread(target=hold)
    holding.start()
    try:
        started = time.monotonic()
        blocked = project.flask(app, "db", "upgrade")
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holding.join()
    assert blocked.exit_code != 0, blocked.output
    assert "Traceback" not in blocked.output
    assert "backfill nicknames) gave up waiting for a lock" in blocked.output
    assert f"held by session {session}" in blocked.output, blocked.output
    # Two tries of a 1 s lock timeout; without one it waits for the holder.
    assert elapsed < 30, elapsed
    filled = "SELECT count(*) FROM users WHERE nickname IS NOT NULL"
    assert query(database, filled) == [(1000,)]

    done = project.flask(app, "db", "upgrade")
    assert done.exit_code == 0, done.output
    assert query(database, filled) == [(2345,)]
    bind.dispose()
