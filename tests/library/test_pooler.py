"""Through a transaction pooler: a real PgBouncer in transaction mode (two server
connections) in front of the PostgreSQL server, as managed PostgreSQL services
run one. Concurrent deploys migrate once and leave no lock or setting behind,
and the app's repeated queries never fail.

On a MiniProject: the deploys are five `flask db upgrade` processes at once
(the lock is between processes); the app's queries run in threads of this
process.

PgBouncer comes from Debian's `pgbouncer` package. Without it these tests are
skipped, or fail under CI=true or --require-databases."""

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from .. import pooler
from ..conftest import require_server
from ..servers import engine
from .generated_suite import INITIAL_REVISION, USER, add_initial_revision
from .miniproject import MiniProject
from .test_backfill import add_users, backfill_project, readme_backfill


@pytest.fixture(scope="session")
def pgbouncer(request: pytest.FixtureRequest) -> Iterator[URL]:
    """The PostgreSQL server's admin URL through a PgBouncer in transaction mode."""
    server = require_server(request.config, "postgresql")
    if pooler.find() is None:
        message = (
            f"pgbouncer is not installed: `{pooler.INSTALL}` (Debian), or put it"
            " on PATH."
        )
        required = request.config.getoption("--require-databases")
        if required or os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with pooler.pgbouncer(server.admin_url) as url:
        yield url


def through(pooled: URL, database: str) -> str:
    """``database`` (a direct URL) reached through the pooler."""
    return (
        make_url(database)
        .set(host=pooled.host, port=pooled.port)
        .render_as_string(hide_password=False)
    )


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    bind = engine(url)
    try:
        with bind.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]
    finally:
        bind.dispose()


def revision(number: int, down: str, sleep: float = 0) -> str:
    pause = f'    op.execute("SELECT pg_sleep({sleep})")\n' if sleep else ""
    return f'''\
"""add table t{number}"""

import sqlalchemy as sa
from alembic import op

revision = "c0ffee00000{number}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{pause}    op.create_table(
        "t{number}",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_t{number}")),
    )


def downgrade() -> None:
    op.drop_table("t{number}")
'''


def add_revisions(project: MiniProject) -> str:
    """Three revisions after the initial one, the first slow enough for every
    deploy to overlap; returns the head."""
    add_initial_revision(project)
    down = INITIAL_REVISION
    for number in (1, 2, 3):
        name = f"2026_12_06_00000{number}-c0ffee00000{number}_t.py"
        (project.versions_dir / name).write_text(
            revision(number, down, sleep=1 if number == 1 else 0)
        )
        down = f"c0ffee00000{number}"
    return down


def flask_upgrade(project: MiniProject, database: str) -> subprocess.Popen[str]:
    """`flask db upgrade` in its own process, from the project's root, as a
    deploy runs it (FLASK_DEBUG as the rendered .flaskenv sets it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "db", "upgrade"],
        cwd=project.root,
        env={
            **os.environ,
            "FLASK_APP": project.package,
            "FLASK_DEBUG": "1",
            "DATABASE_URL": database,
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def upgrade_at_once(
    project: MiniProject, database: str, count: int
) -> list[subprocess.CompletedProcess[str]]:
    processes = [flask_upgrade(project, database) for _ in range(count)]
    results = []
    try:
        for process in processes:
            # A deploy that hangs (waiting for a lock left behind) fails here.
            stdout, stderr = process.communicate(timeout=120)
            results.append(
                subprocess.CompletedProcess(
                    process.args, process.returncode, stdout, stderr
                )
            )
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return results


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def no_setting_left(pooled: str) -> bool:
    """No migration setting stayed on a pooled server connection: one
    transaction on each of them at once shows the server's defaults."""
    bind = engine(pooled)
    try:
        connections = [bind.connect() for _ in range(pooler.SERVER_CONNECTIONS)]
        settings = [
            tuple(c.execute(sa.text("SHOW lock_timeout")).scalars())
            + tuple(c.execute(sa.text("SHOW statement_timeout")).scalars())
            for c in connections
        ]
        for connection in connections:
            connection.close()
    finally:
        bind.dispose()
    return settings == [("0", "0")] * pooler.SERVER_CONNECTIONS


def test_five_deploys_through_a_transaction_pooler_migrate_once_and_leave_no_lock(
    pgbouncer: URL,
    make_database: Callable[[str], str],
    make_mini_project: Callable[..., MiniProject],
) -> None:
    project = make_mini_project(models=USER)
    head = add_revisions(project)
    database = make_database("postgresql")
    pooled = through(pgbouncer, database)

    results = upgrade_at_once(project, pooled, 5)

    assert [r.returncode for r in results] == [0] * 5, "\n".join(map(output, results))
    runs = [
        line
        for result in results
        for line in output(result).splitlines()
        if "Running upgrade" in line
    ]
    assert len(runs) == 4, runs  # each revision once
    assert query(database, "SELECT version_num FROM alembic_version") == [(head,)]
    # Over the direct connection: no advisory lock is held on the database.
    name = make_url(database).database
    assert query(
        database,
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        f" WHERE l.locktype = 'advisory' AND d.datname = '{name}'",
    ) == [(0,)]
    assert no_setting_left(pooled)

    # The next deploy completes, and finds nothing to do (in-process).
    app = project.app(SQLALCHEMY_DATABASE_URI=pooled)
    again = project.flask(app, "db", "upgrade")
    assert again.exit_code == 0, again.output
    assert "Running upgrade" not in again.output
    assert project.current(app) == (head,)


THREADS, QUERIES = 6, 30


def test_app_queries_through_a_transaction_pooler_never_fail(
    pgbouncer: URL,
    make_database: Callable[[str], str],
    make_mini_project: Callable[..., MiniProject],
) -> None:
    """Threads of the app repeat the same queries (psycopg would prepare them
    after 5 runs, and a prepared statement lives on one server connection)."""
    project = make_mini_project(
        models=USER, database_url=through(pgbouncer, make_database("postgresql"))
    )
    app = project.app()
    db = app.extensions["sqlalchemy"]
    user = project.module("models").User
    with app.app_context():
        db.create_all()
    errors: list[str] = []

    def record(exc: Exception) -> None:
        errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

    # The app's own requests: the ORM, then a health check's query.
    def requests(thread: int) -> None:
        for n in range(QUERIES):
            try:
                with app.app_context():
                    email = f"user{thread}-{n}@example.com"
                    db.session.add(user(email=email, name="A User"))
                    db.session.commit()
                    db.session.scalars(sa.select(user).where(user.email == email)).one()
                    assert db.session.execute(sa.text("SELECT 1")).scalar() == 1
            except Exception as exc:
                record(exc)

    # The same query in short transactions on the app's engine, as a busy app
    # runs it.
    def short_transactions(thread: int) -> None:
        with app.app_context():
            for _ in range(QUERIES):
                try:
                    with db.engine.begin() as connection:
                        connection.execute(
                            sa.text("SELECT count(*) FROM users WHERE name = :name"),
                            {"name": f"user {thread}"},
                        ).scalar_one()
                except Exception as exc:
                    record(exc)

    for work in (requests, short_transactions):
        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    with app.app_context():
        rows = db.session.scalar(sa.select(sa.func.count()).select_from(user))
    assert rows == THREADS * QUERIES


def test_a_backfill_through_a_transaction_pooler_fills_every_row(
    pgbouncer: URL,
    make_database: Callable[[str], str],
    make_mini_project: Callable[..., MiniProject],
) -> None:
    """backfill()'s batches, each its own BEGIN ... COMMIT with the timeouts
    SET LOCAL, run through a transaction pooler and leave no setting on its
    server connections."""
    project, before = backfill_project(make_mini_project, readme_backfill())
    database = make_database("postgresql")
    pooled = through(pgbouncer, database)
    app = project.app(SQLALCHEMY_DATABASE_URI=pooled)
    project.upgrade(app, before)
    bind = engine(database)
    add_users(bind)
    bind.dispose()

    result = project.flask(app, "db", "upgrade")

    assert result.exit_code == 0, result.output
    assert "Backfilled 2345 rows of users" in result.output
    assert query(database, "SELECT count(*) FROM users WHERE nickname = name") == [
        (2345,)
    ]
    assert no_setting_left(pooled)
