"""The running release's requests during the next release's migration: a
request that read a table and then writes it while the migration's ALTER TABLE
waits for that table is a deadlock on MariaDB and SQLite (the failure the
rolling-deploy benchmark saw: `1213 Deadlock found` on R1's UPDATE while R2's
migration ran), and retry_transaction turns it into a request that succeeds.

In-process: the request is a view of the MiniProject's app, served by its test
client in one thread; `flask db upgrade` (MiniProject.upgrade) runs in
another; this thread orders them: the request reads, the migration starts and
is seen waiting for its lock, then the request writes. No timing is asserted.
"""

import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask_safe_migrations import is_transient, retry_transaction
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ..servers import engine
from ..test_databases import query
from .generated_suite import (
    INITIAL_REVISION,
    USER,
    add_initial_revision,
    bio_revision,
)
from .miniproject import MiniProject

BIO_REVISION = bio_revision("b10b10b10003", INITIAL_REVISION)

GIVE_UP = 60  # seconds: a step that takes longer has hung; the test fails


def waiting_migration(url: str) -> Callable[[], bool]:
    """Whether the migration's ALTER TABLE users is waiting for its lock, as
    seen from another connection."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        path = make_url(url).database
        assert path

        def sqlite_writer_waits() -> bool:
            # The migration has written (it holds SQLite's write lock) and
            # waits to commit behind the request's read: a write lock asked
            # for without waiting is refused.
            probe = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError:
                return True
            finally:
                probe.close()

        return sqlite_writer_waits
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE users%%'"
        if backend == "postgresql"
        else "SELECT count(*) FROM information_schema.PROCESSLIST"
        " WHERE DB = DATABASE() AND STATE = 'Waiting for table metadata lock'"
        " AND INFO LIKE 'ALTER TABLE users%%'"
    )
    return lambda: bool(query(url, sql)[0][0])


def rename_during_migration(
    make_mini_project: Callable[..., MiniProject],
    url: str,
    decorate: Callable[[SQLAlchemy, Callable[[int], str]], Callable[[int], str]],
    *,
    for_update: bool = False,
) -> tuple[list[int], BaseException | None]:
    """A project with users at its first revision, and a view that reads a user
    and renames it (``decorate(db, view)``). The view reads, the project's
    next migration (ALTER TABLE users ADD bio) starts and waits, the view
    writes; the migration then completes. Returns the view's tries (the id of
    each), and the request's error (None: it succeeded). ``for_update``: the view
    reads with SELECT ... FOR UPDATE."""
    backend = make_url(url).get_backend_name()
    project = make_mini_project(
        models=USER, database_url=url, production_engine=backend
    )
    add_initial_revision(project)
    app = project.app()
    project.upgrade(app)
    db: SQLAlchemy = app.extensions["sqlalchemy"]
    user_model: Any = project.module("models").User
    with app.app_context():
        for n in range(3):
            db.session.add(user_model(email=f"u{n}@example.com", name=f"user {n}"))
        db.session.commit()
    project.add_revisions({"2026_12_07_000001-b10b10b10003_bio.py": BIO_REVISION})

    read, written = threading.Event(), threading.Event()
    tries: list[int] = []

    def rename(user_id: int) -> str:
        # Reads users (with a row lock, if for_update).
        user = db.session.get(user_model, user_id, with_for_update=for_update)
        assert user is not None
        tries.append(user_id)
        if len(tries) == 1:
            read.set()
            assert written.wait(GIVE_UP)
        user.name = "renamed"
        db.session.commit()  # writes users
        return "ok"

    app.add_url_rule("/rename/<int:user_id>", view_func=decorate(db, rename))
    errors: dict[str, BaseException] = {}

    def run(name: str, work: Callable[[], Any]) -> threading.Thread:
        def target() -> None:
            try:
                work()
            except BaseException as exc:
                errors[name] = exc

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    def request() -> None:
        response = app.test_client().get("/rename/1")
        assert response.status_code == 200, response.text

    with pytest.MonkeyPatch.context() as settings:
        # The ALTER waits until the request lets go, however slow this
        # machine: the deadlock needs it waiting when the request writes.
        settings.setenv("MIGRATION_LOCK_TIMEOUT", str(GIVE_UP))
        requesting = run("request", request)
        while not read.wait(0.05):
            assert requesting.is_alive(), errors["request"]
        migrating = run("migration", lambda: project.upgrade(app))
        waiting = waiting_migration(url)
        deadline = time.monotonic() + GIVE_UP
        while not waiting() and "migration" not in errors:
            assert time.monotonic() < deadline, "the migration never waited"
            time.sleep(0.02)
        written.set()
        requesting.join(GIVE_UP)
        migrating.join(GIVE_UP)
        assert not requesting.is_alive() and not migrating.is_alive()
    # Whatever happened to the request, the migration went on once it let go.
    assert "migration" not in errors, errors["migration"]
    assert project.current(app) == ("b10b10b10003",)
    with app.app_context():
        names = db.session.execute(sa.text("SELECT name FROM users WHERE id = 1"))
        renamed = [tuple(row) for row in names]
    assert renamed == [("user 0",) if "request" in errors else ("renamed",)]
    return tries, errors.get("request")


def test_a_read_then_write_request_deadlocks_with_a_waiting_alter_but_on_postgresql(
    database_url: str, make_mini_project: Callable[..., MiniProject]
) -> None:
    """The benchmark's failure, reproduced: without a retry the request fails
    on MariaDB (1213) and SQLite (database is locked), at once, however short
    the migration's lock timeout; PostgreSQL lets the request, which already
    holds a lock on the table, go ahead of the waiting ALTER."""
    tries, error = rename_during_migration(
        make_mini_project, database_url, lambda db, view: view
    )
    assert tries == [1]
    if make_url(database_url).get_backend_name() == "postgresql":
        assert error is None
        return
    assert isinstance(error, sa.exc.OperationalError), error
    assert is_transient(error)
    message = str(error.orig)
    if database_url.startswith("mysql"):
        assert error.orig.args[0] == 1213, message
        assert "Deadlock found" in message
    else:
        assert "database is locked" in message


def test_a_request_that_locks_the_row_as_it_reads_does_not_deadlock_on_mariadb(
    make_database: Callable[[str], str], make_mini_project: Callable[..., MiniProject]
) -> None:
    """SELECT ... FOR UPDATE takes the table's write (metadata) lock with the
    read, so the write asks for no new lock: no deadlock, no retry needed
    (docs/connection-poolers.md names it as the other remedy)."""
    tries, error = rename_during_migration(
        make_mini_project,
        make_database("mysql"),
        lambda db, view: view,
        for_update=True,
    )
    assert (tries, error) == ([1], None)


def test_a_request_that_meets_a_waiting_alter_is_retried_and_succeeds(
    database_url: str,
    make_mini_project: Callable[..., MiniProject],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="flask_safe_migrations.retrying"):
        tries, error = rename_during_migration(
            make_mini_project,
            database_url,
            lambda db, view: retry_transaction(db.session)(view),
        )
    assert error is None
    if make_url(database_url).get_backend_name() == "postgresql":
        assert tries == [1]
    else:
        # Tried again once, after the rollback let the migration through.
        assert tries == [1, 1]
        (warning,) = caplog.messages
        assert "rename: the database aborted the transaction" in warning
        assert "try 2 of 3" in warning


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_two_transactions_that_deadlock_on_rows_both_succeed_when_retried(
    backend: str, make_database: Callable[[str], str]
) -> None:
    """The classic deadlock (each locks a row the other then needs): the
    server aborts one (PostgreSQL 40P01, MySQL 1213), which is tried again."""
    url = make_database(backend)
    bind = engine(url)
    with bind.begin() as connection:
        connection.execute(sa.text("CREATE TABLE counters (id int PRIMARY KEY, n int)"))
        connection.execute(sa.text("INSERT INTO counters VALUES (1, 0), (2, 0)"))
    both_locked = threading.Barrier(2, timeout=GIVE_UP)
    tries: list[int] = []
    errors: list[BaseException] = []

    def add_to_both(first: int, second: int) -> None:
        with Session(bind) as session:

            @retry_transaction(session)
            def work() -> None:
                tries.append(first)
                bump = "UPDATE counters SET n = n + 1 WHERE id = :id"
                session.execute(sa.text(bump), {"id": first})
                if len(tries) <= 2:  # the first try of each
                    both_locked.wait()
                session.execute(sa.text(bump), {"id": second})
                session.commit()

            try:
                work()
            except BaseException as exc:
                errors.append(exc)

    threads = [
        threading.Thread(target=add_to_both, args=order) for order in ((1, 2), (2, 1))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GIVE_UP)
    bind.dispose()
    assert errors == []
    assert len(tries) == 3, tries  # one of them twice
    assert query(url, "SELECT n FROM counters ORDER BY id") == [(2,), (2,)]


def test_a_serialization_failure_is_retried_and_other_errors_are_not(
    make_database: Callable[[str], str],
) -> None:
    """PostgreSQL, REPEATABLE READ: a row changed by another transaction since
    this one's snapshot is 40001, tried again; a refused statement (a unique
    violation) is raised at once, as is any error inside a transaction the
    caller had begun."""
    url = make_database("postgresql")
    bind = engine(url)
    with bind.begin() as connection:
        connection.execute(sa.text("CREATE TABLE counters (id int PRIMARY KEY, n int)"))
        connection.execute(sa.text("INSERT INTO counters VALUES (1, 0)"))
    tries = 0
    with Session(bind.execution_options(isolation_level="REPEATABLE READ")) as session:

        @retry_transaction(session)
        def bump() -> None:
            nonlocal tries
            tries += 1
            session.execute(sa.text("SELECT n FROM counters")).all()  # the snapshot
            if tries == 1:
                with bind.begin() as other:
                    other.execute(sa.text("UPDATE counters SET n = 10"))
            session.execute(sa.text("UPDATE counters SET n = n + 1"))
            session.commit()

        bump()
        assert tries == 2
        assert query(url, "SELECT n FROM counters") == [(11,)]

        @retry_transaction(session)
        def duplicate() -> None:
            nonlocal tries
            tries += 1
            session.execute(sa.text("INSERT INTO counters VALUES (1, 0)"))

        tries = 0
        with pytest.raises(sa.exc.IntegrityError):
            duplicate()
        assert tries == 1
        session.rollback()

        session.execute(sa.text("SELECT 1"))  # the caller's transaction
        tries = 0
        with pytest.raises(sa.exc.OperationalError) as raised:
            bump()
        assert tries == 1 and is_transient(raised.value)
    bind.dispose()
