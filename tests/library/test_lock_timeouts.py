"""Production traffic on the real servers: a migration that waits for a lock
gives up (and retries) before the app's queries stall behind it for long, and
names the session that holds the lock; a revision sets its own timeouts.

In-process, on a MiniProject whose database is on the server: the blocker and
the app's queries are threads of this process, on connections of their own;
`flask db upgrade` runs through the `flask` command (miniproject.flask). The
pauses between tries are shortened (timeouts.BACKOFF_SECONDS), not their
count.

No test asserts a tight timing: the machine is shared. Waits are compared with
the configured bounds plus margins far larger than any scheduling delay, and a
broken timeout shows up as a wait of a whole minute (the holder's limit)."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask_safe_migrations import timeouts

from ..servers import Server, engine
from ..test_databases import query
from .generated_suite import (
    INITIAL_REVISION,
    USER,
    add_initial_revision,
    bio_revision,
)
from .miniproject import MiniProject

AUDIT_REVISION = '''\
"""add audit log"""

import sqlalchemy as sa
from alembic import op

revision = "a0d17000b001"
down_revision = "3f1a9c2b7d40"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
'''

BIO_REVISION = bio_revision("b10b10b10002", "a0d17000b001")

LOCK_TIMEOUT = 1  # seconds, for these tests
LOCK_RETRIES = 2
BACKOFF = 0.25  # the first pause between tries (2 s in production), doubling
# The longest a blocked upgrade waits: each try's lock timeout, and the pauses
# between tries.
WAIT_BOUND = (LOCK_RETRIES + 1) * LOCK_TIMEOUT + BACKOFF + 2 * BACKOFF
HOLD_LIMIT = 90  # the holder lets go after this long, whatever happens
MARGIN = 30  # for a busy machine


def add_revisions(project: MiniProject) -> None:
    versions = project.versions_dir
    (versions / "2026_11_22_000001-a0d17000b001_audit.py").write_text(AUDIT_REVISION)
    (versions / "2026_11_22_000002-b10b10b10002_bio.py").write_text(BIO_REVISION)


@contextmanager
def holding_a_lock_on_users(url: str) -> Iterator[tuple[int, threading.Event]]:
    """A session with a transaction open that has read the users table (as a
    long report or a forgotten psql session would): it holds a lock that
    ALTER TABLE users must wait for. Yields its session id and an event that
    releases it; it lets go after HOLD_LIMIT seconds in any case."""
    bind = engine(url)
    release = threading.Event()
    connection = bind.connect()
    session_id = connection.execute(
        sa.text(
            "SELECT pg_backend_pid()"
            if bind.dialect.name == "postgresql"
            else "SELECT CONNECTION_ID()"
        )
    ).scalar_one()
    connection.execute(sa.text("SELECT count(*) FROM users")).scalar_one()

    def hold() -> None:
        release.wait(HOLD_LIMIT)
        connection.rollback()
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        yield session_id, release
    finally:
        release.set()
        holder.join()
        bind.dispose()


@contextmanager
def probing_users(url: str) -> Iterator[list[float]]:
    """The app meanwhile: queries on users, one after another, each timed."""
    bind = engine(url)
    waits: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with bind.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            while not stop.is_set():
                started = time.monotonic()
                connection.execute(sa.text("SELECT count(*) FROM users")).scalar()
                waits.append(time.monotonic() - started)
                stop.wait(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        yield waits
    finally:
        stop.set()
        prober.join()
        bind.dispose()


def runs_of(text: str, step: str) -> int:
    return sum(f"Running upgrade {step}," in line for line in text.splitlines())


def on_the_server(
    make_mini_project: Callable[..., MiniProject], url: str, engine: str
) -> tuple[MiniProject, Flask]:
    """A project with the template's first revision, its app on ``url``."""
    project = make_mini_project(models=USER, database_url=url, production_engine=engine)
    add_initial_revision(project)
    return project, project.app()


def test_blocked_upgrade_gives_up_naming_the_blocker_and_the_app_keeps_going(
    server: Server,
    database: str,
    make_mini_project: Callable[..., MiniProject],
    environment: pytest.MonkeyPatch,
) -> None:
    project, app = on_the_server(make_mini_project, database, server.engine)
    project.upgrade(app)
    add_revisions(project)
    environment.setenv("MIGRATION_LOCK_TIMEOUT", str(LOCK_TIMEOUT))
    environment.setenv("MIGRATION_LOCK_RETRIES", str(LOCK_RETRIES))
    environment.setattr(timeouts, "BACKOFF_SECONDS", BACKOFF)

    with (
        holding_a_lock_on_users(database) as (holder, release),
        probing_users(database) as waits,
    ):
        time.sleep(0.5)  # the prober is running
        started = time.monotonic()
        blocked = project.flask(app, "db", "upgrade")
        elapsed = time.monotonic() - started
        release.set()

    text = blocked.output
    assert blocked.exit_code != 0, text
    assert "Traceback" not in text
    # It gave up well before the holder let go, within the configured bound.
    assert elapsed < WAIT_BOUND + MARGIN < HOLD_LIMIT, (elapsed, text)
    errors = [line for line in text.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, text
    (message,) = errors
    assert "Migration b10b10b10002 (add bio to users) gave up waiting" in message
    assert f"held by session {holder} (idle in transaction" in message, text
    if server.engine == "postgresql":  # MariaDB shows no query of an idle session
        assert "last query: SELECT count(*) FROM users" in message
    assert "MIGRATION_LOCK_TIMEOUT" in message
    # The retries were of the blocked migration only; the one before it ran once
    # and stays applied.
    assert runs_of(text, f"{INITIAL_REVISION} -> a0d17000b001") == 1
    assert runs_of(text, "a0d17000b001 -> b10b10b10002") == LOCK_RETRIES + 1, text
    assert query(database, "SELECT version_num FROM alembic_version") == [
        ("a0d17000b001",)
    ]
    # The app's queries queued behind the waiting ALTER at most one lock timeout
    # each (without the timeout, one waits until the holder lets go).
    assert len(waits) > 3, waits
    assert max(waits) < LOCK_TIMEOUT + MARGIN < HOLD_LIMIT, max(waits)

    # The lock released, the same command succeeds and runs what was left, once.
    done = project.flask(app, "db", "upgrade")
    assert done.exit_code == 0, done.output
    assert runs_of(done.output, "a0d17000b001 -> b10b10b10002") == 1
    assert "-> a0d17000b001," not in done.output
    assert query(database, "SELECT version_num FROM alembic_version") == [
        ("b10b10b10002",)
    ]
    assert query(database, "SELECT count(bio) FROM users") == [(0,)]


SLOW_STATEMENT_REVISION = '''\
"""a statement slower than this revision allows"""

from alembic import op

revision = "5107e5107e01"
down_revision = "3f1a9c2b7d40"
branch_labels = None
depends_on = None

STATEMENT_TIMEOUT = 0.5  # seconds, for this revision only


def upgrade() -> None:
    op.execute("CREATE TABLE scratch (id integer)")
    op.execute("SELECT pg_sleep(5)")


def downgrade() -> None:
    op.execute("DROP TABLE scratch")
'''


def test_a_revision_sets_its_own_timeouts_and_a_bad_setting_is_explained(
    make_database: Callable[[str], str],
    make_mini_project: Callable[..., MiniProject],
    environment: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL: STATEMENT_TIMEOUT in a revision file cancels its slow
    statement (rolled back, explained); bad values are refused in one line."""
    database = make_database("postgresql")
    project, app = on_the_server(make_mini_project, database, "postgresql")
    revision = project.versions_dir / "2026_11_22_000001-5107e5107e01_slow.py"
    revision.write_text(SLOW_STATEMENT_REVISION)

    def upgrade(**env: str) -> str:
        with pytest.MonkeyPatch.context() as settings:
            for name, value in env.items():
                settings.setenv(name, value)
            result: Result = project.flask(app, "db", "upgrade")
        assert result.exit_code != 0
        assert "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if "ERROR" in line]
        assert len(errors) == 1, result.output
        return errors[0]

    message = upgrade()
    assert "Migration 5107e5107e01" in message
    assert "statement timeout (0.5 s)" in message
    assert "STATEMENT_TIMEOUT" in message
    assert query(database, "SELECT version_num FROM alembic_version") == [
        (INITIAL_REVISION,)
    ]
    assert query(database, "SELECT to_regclass('scratch') IS NULL") == [(True,)]

    for variable, value in (
        ("MIGRATION_LOCK_TIMEOUT", "soon"),
        ("MIGRATION_STATEMENT_TIMEOUT", "-1"),
        ("MIGRATION_LOCK_RETRIES", "2.5"),
        ("MIGRATION_STATEMENT_TIMEOUT", "1e99"),  # was a DataError traceback
    ):
        message = upgrade(**{variable: value})
        assert f"{variable}={value!r} is not " in message, message

    revision.write_text(
        SLOW_STATEMENT_REVISION.replace(
            "STATEMENT_TIMEOUT = 0.5", 'LOCK_TIMEOUT = "5s"'
        )
    )
    message = upgrade()
    assert "5107e5107e01_slow.py's LOCK_TIMEOUT='5s' is not" in message
