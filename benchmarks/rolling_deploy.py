"""Rolling deploys: a column renamed by expand and contract, under traffic.

    uv run python benchmarks/rolling_deploy.py            # both engines, 3 runs
                                                          # each; ~15 min
    uv run python benchmarks/rolling_deploy.py --repeat 1 --backfill-pause 0
    uv run python benchmarks/rolling_deploy.py --engines postgresql --rows 200000
    uv run python benchmarks/rolling_deploy.py --migration-cpu nice
                                            # niceness 19, as earlier runs
    uv run python benchmarks/rolling_deploy.py --migration-cpu shared --phase 6
                                            # as the first runs

A default project is rendered per engine (PostgreSQL, MariaDB) and copied into
four releases that rename users.name to users.display_name the way the
generated migrations/README teaches ("Expand and contract"):

R0  the example model: users.name.
R1  expand: a nullable display_name, filled by the library's backfill() in a
    revision of its own (batches of --batch rows, each followed by a pause
    --backfill-pause times as long); the code writes both columns and reads
    name.
R2  switch: the code reads and writes display_name only and no longer maps
    name; its migrations copy name again where display_name differs (R0 kept
    writing name during and after R1's backfill: without this copy R3's NOT
    NULL fails) and give name a server default, so R2's inserts, which leave
    it out, succeed (a change of the table's definition only: dropping its
    NOT NULL instead rebuilds the table on MariaDB).
R3  contract: display_name becomes NOT NULL (on PostgreSQL by a CHECK added
    NOT VALID and validated apart, as the review's safe form) and name is
    dropped (acknowledged data loss); R2 runs on, since it no longer maps it.

Each release serves with gunicorn (WEB_CONCURRENCY workers) and a small
blueprint the benchmark adds to it (read a user, update one, create one, by
whichever column the release uses). A load generator (--threads threads on
127.0.0.1, --rate requests a second in all, half reads, 30% updates, 20%
inserts) runs through the whole deploy. Every step N -> N+1 has six phases:

before     N serves alone;
control    N serves while its own `flask db upgrade` runs with nothing to do:
           what starting the command costs the traffic, without any DDL
           (`flask db ...` spends ~1.5 s of CPU importing; see BENCHMARKS.md);
migration  N serves while N+1's `flask db upgrade` runs (process start
           included);
start      N serves while N+1's gunicorn starts, until /health answers;
overlap    N and N+1 both serve, requests alternating between them;
after      N was drained (taken out of the rotation, its requests finished,
           then SIGTERM) and N+1 serves alone.

The migration's process, the control's and the new release's gunicorn start
run on one core under SCHED_IDLE (--migration-cpu idle, the default): the
kernel gives them only the CPU time no other process wants, and never both
cores. In production the migration Job and the new pods run in pods of their
own, on CPU the serving pods do not share; on a 2-core machine shared with
gunicorn and the load generator, a `flask db upgrade` that imports Flask and
SQLAlchemy takes that CPU from the requests instead, and the migration phase's
p99 measures the command's start-up rather than its locks (the control phase
shows how much). A lower priority alone is not enough here: on this machine's
kernel (HZ 250, no forced preemption) a process that keeps both cores busy
delays a waking process by up to a 4 ms tick whatever its priority; with one
core left to them, the serving processes wake at once. What the commands do in
the database (their locks, the backends serving them, at normal priority) is
unchanged. The new gunicorn gets normal scheduling back once /health answers,
as it then serves (this needs root; without it its start is not lowered).

Per phase: requests, failed requests (an error status, a refused or reset
connection, or no answer within 10 s), stale reads (a read that did not
return the value the same thread last wrote to that row: every thread reads
and writes only its own rows, so it knows the answer), and the p50, p99 and
worst latency. Latency is measured from the moment the request was due, not the
moment it was sent, so a stall that holds the threads back is counted in
full; so the load generator's own garbage collector is off during a deploy
(no_collector_pauses). After the last step every row a thread wrote is
checked in the database (lost writes). A watcher samples, every 20 ms, the
statements waiting for a lock in the benchmark's database (with the sessions
holding it), PostgreSQL's autovacuum of it and the machine's CPU use, so that
a slow phase can be put down to a lock, the server's own work or the machine.
--repeat runs the whole deploy several times, each on a new database, and
pools the requests of each step's phase: a migration phase lasts
as long as its command (under 1 to 6 s), and the p99 of one run's few hundred
requests is its two or three slowest. Targets (issue 22): 0 failed requests;
p99 during the migration at most 2x p99 before it.

The results replace the "Rolling deploy" section of BENCHMARKS.md
(benchmarks/run.py keeps that section when it rewrites the rest). Needs the
database servers of the template's tests (tests/servers.py); the databases it
creates are dropped afterwards. Bounded: phases last --phase seconds, an
upgrade is killed after --limit seconds and a release that does not answer
/health within 60 s stops the run.
"""

import argparse
import bisect
import gc
import http.client
import itertools
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import sections  # noqa: E402
from benchmarks.run import Bench, flask, machine  # noqa: E402
from tests.helpers import build_project_env, project_environ  # noqa: E402
from tests.servers import SERVERS, engine  # noqa: E402

SECTION = "## Rolling deploy: expand/contract rename over three releases"
PHASES = ("before", "control", "migration", "start", "overlap", "after")
SECRET_KEY = "rolling-deploy-benchmark-5b0d7c2e91f4a8363e1d0c7b2a9f4e6d81c3b5a7"
REQUEST_TIMEOUT = 10.0
PACKAGE = "my_flask_app"

# --- The releases -----------------------------------------------------------

USER_HEAD = '''\
"""The User model (benchmarks/rolling_deploy.py, release {release})."""

from datetime import datetime

from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
'''
USER_TAIL = """\
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.current_timestamp()
    )
"""
NAME = "    name: Mapped[str] = mapped_column(String(100))\n"
DISPLAY_NAME = "    display_name: Mapped[{type}] = mapped_column(String(100))\n"

BLUEPRINT = '''\
"""Users over HTTP (benchmarks/rolling_deploy.py, release {release})."""

from typing import Any

from flask import Blueprint, abort, request
from flask_safe_migrations import retry_transaction

from .extensions import db
from .models import User

bp = Blueprint("bench", __name__, url_prefix="/bench")


@bp.get("/users/<int:user_id>")
def read(user_id: int) -> dict[str, Any]:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return {{"id": user.id, "name": user.{read}}}


# Reads, then writes: on MariaDB a deadlock with a migration's waiting ALTER
# TABLE (MariaDB error 1213), retried (flask_safe_migrations.retrying).
@bp.post("/users/<int:user_id>")
@retry_transaction(db.session)
def update(user_id: int) -> dict[str, Any]:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    value = request.get_json()["name"]
{write}
    db.session.commit()
    return {{"id": user.id}}


@bp.post("/users")
@retry_transaction(db.session)
def create() -> tuple[dict[str, Any], int]:
    data = request.get_json()
    value = data["name"]
    user = User(email=data["email"], {create})
    db.session.add(user)
    db.session.commit()
    return {{"id": user.id}}, 201
'''

REVISION_HEAD = '''\
"""{message}"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None
'''

# Copy name into display_name with the library's backfill(), as the
# migrations/README teaches ("Backfilling in batches"): batches, each committed,
# with a pause after each; {where} chooses the rows to fill.
BACKFILL = """
from flask_safe_migrations import backfill


def upgrade() -> None:
    users = sa.table(
        "users", sa.column("id"), sa.column("name"), sa.column("display_name")
    )
    backfill(
        users,
        {{"display_name": users.c.name}},
        {where},
        batch={batch},
        pause={pause},
    )


def downgrade() -> None:
    pass
"""

ADD_DISPLAY_NAME = """

def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("display_name", sa.String(length=100), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("display_name")
"""

# R2's inserts leave name out: it gets a server default, a change of the
# table's definition only. Making it nullable instead rebuilds the whole table
# on MariaDB (ALGORITHM=INSTANT refuses it; 67 ms for 50,000 rows here).
NAME_DEFAULT = """

def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column(
            "name",
            existing_type=sa.String(length=100),
            existing_nullable=False,
            server_default="",
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column(
            "name",
            existing_type=sa.String(length=100),
            existing_nullable=False,
            server_default=None,
        )
"""

# The review's safe form of SET NOT NULL on PostgreSQL; a plain ALTER elsewhere.
DISPLAY_NAME_NOT_NULL = """

def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE users ADD CONSTRAINT users_display_name_not_null"
            " CHECK (display_name IS NOT NULL) NOT VALID"
        )
        with op.get_context().autocommit_block():
            op.execute(
                "ALTER TABLE users VALIDATE CONSTRAINT users_display_name_not_null"
            )
        op.execute("ALTER TABLE users ALTER COLUMN display_name SET NOT NULL")
        op.execute("ALTER TABLE users DROP CONSTRAINT users_display_name_not_null")
    else:
        with op.batch_alter_table("users") as batch_op:
            batch_op.alter_column(
                "display_name", existing_type=sa.String(length=100), nullable=False
            )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column(
            "display_name", existing_type=sa.String(length=100), nullable=True
        )
"""

DROP_NAME = """
ACKNOWLEDGED: list[str] = [
    # DATA LOSS: the data moved to display_name in the two releases before.
    "drop column users.name",
]


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("name")


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=100), nullable=True))
"""


@dataclass(frozen=True)
class Release:
    name: str
    description: str
    columns: str  # the model's name columns
    read: str
    write: list[str]
    create: str
    revisions: list[tuple[str, str]]  # (message, body) of the new revisions


def releases(batch: int, pause: float) -> list[Release]:
    all_names = "users.c.display_name.is_(None)"
    differs = (
        "sa.or_(users.c.display_name.is_(None), users.c.display_name != users.c.name)"
    )
    return [
        Release(
            "R0", "users.name", NAME, "name", ["user.name = value"], "name=value", []
        ),
        Release(
            "R1",
            "expand: add display_name, backfill; write both, read name",
            NAME + DISPLAY_NAME.format(type="str | None"),
            "name",
            ["user.name = value", "user.display_name = value"],
            "name=value, display_name=value",
            [
                ("add users.display_name (expand)", ADD_DISPLAY_NAME),
                (
                    "backfill users.display_name",
                    BACKFILL.format(where=all_names, batch=batch, pause=pause),
                ),
            ],
        ),
        Release(
            "R2",
            "switch: re-copy rows R0 wrote, name defaults to ''; read and write"
            " display_name",
            DISPLAY_NAME.format(type="str | None"),
            "display_name",
            ["user.display_name = value"],
            "display_name=value",
            [
                (
                    "copy users.name again where R0 changed it after the backfill",
                    BACKFILL.format(where=differs, batch=batch, pause=pause),
                ),
                (
                    "users.name defaults to '': the code no longer writes it",
                    NAME_DEFAULT,
                ),
            ],
        ),
        Release(
            "R3",
            "contract: display_name NOT NULL, drop name",
            DISPLAY_NAME.format(type="str"),
            "display_name",
            ["user.display_name = value"],
            "display_name=value",
            [
                ("users.display_name NOT NULL (contract)", DISPLAY_NAME_NOT_NULL),
                ("drop users.name (contract)", DROP_NAME),
            ],
        ),
    ]


def build_releases(
    project: Path, workdir: Path, batch: int, pause: float
) -> list[Path]:
    """A copy of ``project`` per release, each with the revisions of the
    releases before it and its own."""
    paths = []
    down = "3f1a9c2b7d40"  # the example model's revision
    number = 0
    versions: list[tuple[str, str]] = []
    for release in releases(batch, pause):
        path = workdir / release.name
        shutil.copytree(project, path)
        package = path / PACKAGE
        (package / "models" / "user.py").write_text(
            USER_HEAD.format(release=release.name) + release.columns + USER_TAIL
        )
        (package / "bench_api.py").write_text(
            BLUEPRINT.format(
                release=release.name,
                read=release.read,
                write="\n".join(f"    {line}" for line in release.write),
                create=release.create,
            )
        )
        init = package / "__init__.py"
        text = init.read_text()
        old = "    app.register_blueprint(main.bp)\n"
        assert old in text, f"{old!r} not in {init}"
        init.write_text(
            text.replace(
                old,
                old + "    from . import bench_api\n\n"
                "    app.register_blueprint(bench_api.bp)\n",
            )
        )
        for message, body in release.revisions:
            number += 1
            revision = f"b0110000000{number:x}"
            name = f"2026_12_07_00000{number}-{revision}_rolling.py"
            source = (
                REVISION_HEAD.format(message=message, revision=revision, down=down)
                + body
            )
            versions.append((name, source))
            down = revision
        for name, source in versions:
            (path / "migrations" / "versions" / name).write_text(source)
        paths.append(path)
    return paths


# --- Serving ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, timeout: float = REQUEST_TIMEOUT) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass
class Server:
    release: str
    port: int
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# How a deploy's own processes (`flask db upgrade`, control and migration, and
# the new release's gunicorn until it serves) get the CPU (--migration-cpu):
# as a prefix to their command line, since preexec_fn is not safe with the
# load generator's threads running.
CPU = {
    # One core (the last) and SCHED_IDLE on it: only CPU time no other
    # process wants. One core, because on this machine's kernel a process
    # that keeps every core busy delays a waking process by up to a timer
    # tick (4 ms) whatever its priority (see BENCHMARKS.md).
    "idle": ["taskset", "-c", str(max(os.sched_getaffinity(0))), "chrt", "--idle", "0"],
    # Niceness 19, every core: earlier runs.
    "nice": ["nice", "-n", "19"],
    # As the serving processes: the first runs.
    "shared": [],
}


def busy_task_p99(busy: list[str] | None, samples: int) -> float:
    """The p99, in ms, of a ~2 ms CPU task repeated every 5 ms while a busy
    loop runs on each core, started behind the ``busy`` prefix (None: none)."""
    loops = [
        subprocess.Popen([*busy, sys.executable, "-c", "while True: pass"])
        for _ in (os.sched_getaffinity(0) if busy is not None else ())
    ]
    try:
        time.sleep(0.3)
        durations = []
        for _ in range(samples):
            start = time.perf_counter()
            total = 0
            for i in range(60_000):
                total += i * i
            durations.append((time.perf_counter() - start) * 1000)
            time.sleep(0.005)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    return statistics.quantiles(durations, n=100)[98]


def cpu_probe(samples: int = 400) -> dict[str, float]:
    """Why the deploy's commands get one core: a CPU task's p99 alone, beside
    lowered busy loops on every core, and beside the same on one core."""
    return {
        "alone": busy_task_p99(None, samples),
        "every core": busy_task_p99(CPU["nice"], samples),
        "one core": busy_task_p99(CPU["idle"], samples),
    }


def lowered(command: list[str], cpu: str) -> list[str]:
    """``command`` getting the CPU as ``cpu`` (a key of CPU) says."""
    return [*CPU[cpu], *command]


def can_restore() -> bool:
    """Whether a lowered process can be given normal scheduling back (root, as
    the template's CI and this machine run; CAP_SYS_NICE alone is not checked)."""
    return os.geteuid() == 0


def restore(group: int) -> None:
    """Every thread of process group ``group`` back to the serving processes'
    scheduling (SCHED_OTHER, niceness 0, every core): all three are per thread
    on Linux."""
    cores = os.sched_getaffinity(0)
    for stat in Path("/proc").glob("[0-9]*/task/[0-9]*/stat"):
        try:
            # After the command name in parentheses: state, ppid, pgrp, ...
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:
                tid = int(stat.parent.name)
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
                os.setpriority(os.PRIO_PROCESS, tid, 0)
                os.sched_setaffinity(tid, cores)
        except (OSError, IndexError, ValueError):
            continue  # the thread exited meanwhile


def start_server(
    release: Path, env: dict[str, str], workers: int, cpu: str = "shared"
) -> Server:
    """gunicorn serving ``release``, once /health answers. It starts getting
    the CPU as ``cpu`` says (in a process group of its own) and all its
    processes are given normal scheduling back once it answers, as it then
    serves traffic."""
    lower = cpu != "shared"
    port = free_port()
    log = release / "gunicorn.log"
    process = subprocess.Popen(
        lowered(["gunicorn"], cpu),
        process_group=0 if lower else None,
        cwd=release,
        env={
            **env,
            "SECRET_KEY": SECRET_KEY,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": str(workers),
        },
        stdout=subprocess.DEVNULL,  # the access log
        stderr=log.open("wb"),
    )
    server = Server(release.name, port, process, log)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            sys.exit(f"gunicorn of {release.name} exited:\n{log.read_text()[-3000:]}")
        try:
            if get(port, "/health", timeout=2)[0] == 200:
                if lower:
                    restore(process.pid)
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            sys.exit(f"gunicorn of {release.name} did not answer /health in 60 s")
        time.sleep(0.05)


# --- Load -------------------------------------------------------------------


@dataclass
class Result:
    due: float  # when the request was due (time.perf_counter())
    kind: str  # read, update, create
    latency: float
    failed: bool
    stale: bool
    detail: str = ""


@dataclass
class Load:
    """Threads that read and write users at a fixed rate against the servers
    in ``rotation``, each owning its rows, so it knows what a read must return."""

    rows: int
    threads: int
    rate: float
    rotation: list[int] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)  # phase starts
    results: list[Result] = field(default_factory=list)
    expected: dict[int, str | None] = field(default_factory=dict)
    in_flight: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.workers: list[threading.Thread] = []

    def mark(self, phase: str) -> None:
        """Requests due from now on belong to ``phase``."""
        self.marks.append((time.perf_counter(), phase))

    def phase_of(self, due: float) -> str:
        index = bisect.bisect_right([t for t, _ in self.marks], due) - 1
        return self.marks[index][1] if index >= 0 else "warm-up"

    def duration(self, phase: str) -> float:
        for (start, name), (end, _) in itertools.pairwise(self.marks):
            if name == phase:
                return end - start
        return float("nan")

    def start(self) -> None:
        self.running.set()
        for number in range(self.threads):
            worker = threading.Thread(target=self.run, args=(number,), daemon=True)
            worker.start()
            self.workers.append(worker)

    def stop(self) -> None:
        self.running.clear()
        for worker in self.workers:
            worker.join()

    @contextmanager
    def target(self, turn: int) -> Iterator[int]:
        with self.lock:
            port = self.rotation[turn % len(self.rotation)]
            self.in_flight[port] = self.in_flight.get(port, 0) + 1
        try:
            yield port
        finally:
            with self.lock:
                self.in_flight[port] -= 1

    def drain(self, port: int) -> None:
        """Take ``port`` out of the rotation and wait for its requests to end."""
        with self.lock:
            self.rotation.remove(port)
        while self.in_flight.get(port, 0):
            time.sleep(0.01)

    def run(self, number: int) -> None:
        generator = random.Random(number)
        # 100 rows of the thread's own, spread over the table; its inserts join them.
        owned = [
            row
            for row in range(number + 1, self.rows + 1, self.threads)
            if generator.random() < 100 * self.threads / self.rows
        ] or [number + 1]
        expected = {row: f"user {row}" for row in owned}
        interval = self.threads / self.rate
        due = time.perf_counter() + generator.random() * interval
        turn = counter = 0
        while self.running.is_set():
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            choice = generator.random()
            row = generator.choice(owned)
            counter += 1
            value = f"t{number} n{counter}"
            if choice < 0.5:
                kind, method, path, body = "read", "GET", f"/bench/users/{row}", None
            elif choice < 0.8:
                kind, method, path = "update", "POST", f"/bench/users/{row}"
                body = {"name": value}
            else:
                kind, method, path = "create", "POST", "/bench/users"
                body = {"name": value, "email": f"t{number}-{counter}@example.com"}
            failed = stale = False
            detail = ""
            with self.target(turn) as port:
                turn += 1
                connection = http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=REQUEST_TIMEOUT
                )
                try:
                    payload = None if body is None else json.dumps(body)
                    headers = {"Content-Type": "application/json"} if body else {}
                    connection.request(method, path, payload, headers)
                    response = connection.getresponse()
                    data = response.read()
                    if response.status >= 400:
                        failed, detail = True, f"{response.status} {data[:200]!r}"
                    elif kind == "read":
                        got = json.loads(data)["name"]
                        if expected.get(row) is not None and got != expected[row]:
                            stale = True
                            detail = f"row {row}: {got!r}, wrote {expected[row]!r}"
                    elif kind == "update":
                        expected[row] = value
                    else:
                        new = json.loads(data)["id"]
                        owned.append(new)
                        expected[new] = value
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    failed, detail = True, f"{type(exc).__name__}: {exc}"
                    if kind == "update":
                        expected[row] = None  # unknown whether it landed
                finally:
                    connection.close()
            latency = time.perf_counter() - due
            with self.lock:
                self.results.append(
                    Result(due, kind, latency, failed, stale, f"{kind}: {detail}")
                )
            due += interval
        with self.lock:
            self.expected.update(expected)


# --- What the database and the machine did ------------------------------------

# PostgreSQL: every backend of this database waiting for a lock, how long its
# statement has run, and the sessions it waits for (pg_blocking_pids).
POSTGRESQL_WAITS = """
SELECT w.pid, w.query_start,
       extract(epoch FROM clock_timestamp() - w.query_start),
       left(w.query, 100),
       coalesce(string_agg(b.pid || ' (' || b.state || '): ' || left(b.query, 100),
                           '; '), '')
FROM pg_stat_activity AS w
LEFT JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid) ON true
LEFT JOIN pg_stat_activity AS b ON b.pid = blocker.pid
WHERE w.wait_event_type = 'Lock' AND w.datname = current_database()
GROUP BY w.pid, w.query_start, w.query
"""
# MariaDB: sessions waiting for a metadata or table lock (the processlist's
# state), and InnoDB row lock waits with the transaction they wait for.
MYSQL_WAITS = """
SELECT ID, INFO, TIME_MS / 1000, LEFT(INFO, 100), STATE
FROM information_schema.PROCESSLIST
WHERE STATE LIKE 'Waiting for%lock%' AND DB = DATABASE()
"""
MYSQL_ROW_WAITS = """
SELECT r.trx_mysql_thread_id, r.trx_wait_started,
       TIMESTAMPDIFF(MICROSECOND, r.trx_wait_started, NOW(6)) / 1e6,
       LEFT(r.trx_query, 100),
       CONCAT(b.trx_mysql_thread_id, ' (', b.trx_state, '): ',
              COALESCE(LEFT(b.trx_query, 100), 'idle in transaction'))
FROM information_schema.INNODB_LOCK_WAITS AS l
JOIN information_schema.INNODB_TRX AS r ON r.trx_id = l.requesting_trx_id
JOIN information_schema.INNODB_TRX AS b ON b.trx_id = l.blocking_trx_id
"""
# PostgreSQL: autovacuum working on this database (after a backfill updated
# every row, it vacuums and analyzes the table, on the cores the app uses).
POSTGRESQL_AUTOVACUUM = """
SELECT left(query, 100) FROM pg_stat_activity
WHERE backend_type = 'autovacuum worker' AND datname = current_database()
"""


@dataclass
class Wait:
    """One statement's wait for a lock, as the watcher saw it."""

    first_seen: float  # time.perf_counter()
    seconds: float  # the longest it was seen waiting
    query: str
    blockers: str


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


@dataclass
class Watch:
    """A thread that samples, every ``interval`` seconds, the statements of
    the benchmark's database that wait for a lock (what blocks them, for how
    long), PostgreSQL's autovacuum of it, and the machine's CPU use, so that a
    slow phase can be put down to a lock, the server's own work or the
    machine."""

    url: str
    interval: float = 0.02
    waits: dict[tuple, Wait] = field(default_factory=dict)
    cpu: list[tuple[float, int, int]] = field(default_factory=list)
    autovacuum: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.running = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        self.running.set()
        self.thread.start()

    def stop(self) -> None:
        self.running.clear()
        self.thread.join()

    def run(self) -> None:
        bind = engine(self.url).execution_options(isolation_level="AUTOCOMMIT")
        postgresql = bind.dialect.name == "postgresql"
        queries = [POSTGRESQL_WAITS] if postgresql else [MYSQL_WAITS, MYSQL_ROW_WAITS]
        try:
            with bind.connect() as connection:
                while self.running.is_set():
                    now = time.perf_counter()
                    self.cpu.append((now, *cpu_times()))
                    for query in queries:
                        for row in connection.execute(sa.text(query)):
                            self.saw(now, row, query is MYSQL_WAITS)
                    if postgresql:
                        self.autovacuum += [
                            (now, work)
                            for work in connection.scalars(
                                sa.text(POSTGRESQL_AUTOVACUUM)
                            )
                        ]
                    time.sleep(self.interval)
        except sa.exc.DBAPIError as exc:  # reported, not raised: the run goes on
            self.error = str(exc).splitlines()[0]
        finally:
            bind.dispose()

    def saw(self, now: float, row: sa.Row, metadata: bool) -> None:
        # (session, statement start or text, seconds waited, statement, what it
        # waits for: the sessions holding the lock, or MariaDB's lock state)
        session, start, seconds, query, blockers = row
        if metadata:
            blockers = f"({blockers}; the holder is not shown)"
        key = (session, start)
        wait = self.waits.get(key)
        if wait is None:
            self.waits[key] = Wait(now, float(seconds or 0), query or "", blockers)
        else:
            wait.seconds = max(wait.seconds, float(seconds or 0))

    def phase_cpu(self, load: "Load", phase: str) -> float:
        """The share of the machine's CPU time that was busy during ``phase``."""
        samples = [s for s in self.cpu if load.phase_of(s[0]) == phase]
        if len(samples) < 2:
            return float("nan")
        (_, busy0, total0), (_, busy1, total1) = samples[0], samples[-1]
        return (busy1 - busy0) / max(1, total1 - total0)


# --- The deploy -------------------------------------------------------------


def fill(url: str, rows: int) -> None:
    bind = engine(url)
    users = sa.table("users", sa.column("email"), sa.column("name"))
    with bind.begin() as connection:
        for start in range(1, rows + 1, 5000):
            connection.execute(
                users.insert(),
                [
                    {"email": f"user{row}@example.com", "name": f"user {row}"}
                    for row in range(start, min(start + 5000, rows + 1))
                ],
            )
    bind.dispose()


def lost_writes(url: str, expected: dict[int, str | None]) -> int:
    """Rows whose display_name is not what the load generator last wrote."""
    bind = engine(url)
    known = {row: value for row, value in expected.items() if value is not None}
    with bind.connect() as connection:
        stored = dict(
            connection.execute(
                sa.text(
                    "SELECT id, display_name FROM users WHERE id IN :ids"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": list(known)},
            ).all()
        )
    bind.dispose()
    return sum(stored.get(row) != value for row, value in known.items())


@contextmanager
def no_collector_pauses() -> Iterator[None]:
    """This process's cyclic garbage collector off, then a full collection.

    The load generator is this process: a full collection of its heap (the
    results so far, the imported libraries) stops its threads for 25 to 60 ms
    on this machine, about once a run, and the requests due meanwhile counted
    that as the servers' latency. Reference counting still frees what a
    deploy drops; the few cycles wait for the collection after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()


def deploy(
    engine_name: str, paths: list[Path], env: dict[str, str], args: argparse.Namespace
) -> dict:
    load = Load(args.rows, args.threads, args.rate)
    watch = Watch(env["DATABASE_URL"])
    watch.start()
    steps = []
    current = start_server(paths[0], env, args.workers)
    servers = [current]
    load.rotation.append(current.port)
    load.start()
    try:
        time.sleep(args.phase)  # warm-up: every worker has its connections
        for previous, path in itertools.pairwise(paths):
            step = f"{previous.name} -> {path.name}"
            print(f"  {engine_name}: {step}", flush=True)
            load.mark(f"{step}|before")
            time.sleep(args.phase)
            # The cost of the command alone: N's own `flask db upgrade`, at head.
            load.mark(f"{step}|control")
            subprocess.run(
                lowered(["flask", "db", "upgrade"], args.migration_cpu),
                cwd=previous,
                env=env,
                check=True,
                capture_output=True,
            )
            load.mark(f"{step}|migration")
            upgrade = subprocess.run(
                lowered(["flask", "db", "upgrade"], args.migration_cpu),
                cwd=path,
                env=env,
                capture_output=True,
                text=True,
                timeout=args.limit,
            )
            if upgrade.returncode:
                sys.exit(f"flask db upgrade of {path.name} failed:\n{upgrade.stderr}")
            load.mark(f"{step}|start")
            new = start_server(path, env, args.workers, args.start_cpu)
            servers.append(new)
            with load.lock:
                load.rotation.append(new.port)
            load.mark(f"{step}|overlap")
            time.sleep(args.phase)
            load.drain(current.port)
            load.mark(f"{step}|after")  # N stops while N+1 serves alone
            current.stop()
            current = new
            time.sleep(args.phase)
            steps.append(step)
        load.mark("end")
    finally:
        load.stop()
        watch.stop()
        for server in servers:
            server.stop()
    return {"steps": steps, "load": load, "watch": watch}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summarise(runs: list[dict]) -> list[dict]:
    """Per step and phase, the requests of all ``runs`` pooled: with --repeat,
    a migration phase of a few hundred requests, whose p99 is its two or three
    slowest, gets a p99 over the migrations of every run."""
    rows = []
    by_phase: dict[str, list[Result]] = {}
    waits: dict[str, list[Wait]] = {}
    # Per phase, each autovacuum statement and the seconds it was seen.
    autovacuum: dict[str, dict[str, float]] = {}
    for run in runs:
        load: Load = run["load"]
        watch: Watch = run["watch"]
        for result in load.results:
            by_phase.setdefault(load.phase_of(result.due), []).append(result)
        for wait in watch.waits.values():
            waits.setdefault(load.phase_of(wait.first_seen), []).append(wait)
        for seen, work in watch.autovacuum:
            works = autovacuum.setdefault(load.phase_of(seen), {})
            works[work] = works.get(work, 0.0) + watch.interval
    for step in runs[0]["steps"]:
        for phase in PHASES:
            name = f"{step}|{phase}"
            results = by_phase.get(name, [])
            latencies = [r.latency for r in results] or [float("nan")]
            seen = sorted(waits.get(name, []), key=lambda w: -w.seconds)
            rows.append(
                {
                    "step": step,
                    "phase": phase,
                    "seconds": statistics.mean(
                        run["load"].duration(name) for run in runs
                    ),
                    "requests": len(results),
                    "failed": sum(r.failed for r in results),
                    "stale": sum(r.stale for r in results),
                    "p50_ms": statistics.median(latencies) * 1000,
                    "p99_ms": percentile(latencies, 0.99) * 1000,
                    "max_ms": max(latencies) * 1000,
                    "lock_waits": len(seen),
                    "longest_wait_ms": seen[0].seconds * 1000 if seen else 0.0,
                    "waits": [
                        f"{w.seconds * 1000:.0f} ms: {w.query} -- waits for"
                        f" {w.blockers}"
                        for w in seen[:3]
                    ],
                    "autovacuum": [
                        f"{work} ({seconds:.1f} s)"
                        for work, seconds in autovacuum.get(name, {}).items()
                    ],
                    "cpu": statistics.mean(
                        run["watch"].phase_cpu(run["load"], name) for run in runs
                    ),
                    "details": sorted(
                        {r.detail for r in results if r.failed or r.stale}
                    )[:5],
                }
            )
    return rows


def run_ratios(runs: list[dict]) -> list[list[float]]:
    """Per run, per step: p99 during the migration / p99 before it."""
    ratios = []
    for run in runs:
        by = {(r["step"], r["phase"]): r["p99_ms"] for r in summarise([run])}
        ratios.append(
            [by[(step, "migration")] / by[(step, "before")] for step in run["steps"]]
        )
    return ratios


def server_version(url: str) -> str:
    bind = engine(url)
    with bind.connect() as connection:
        version = connection.exec_driver_sql("SELECT version()").scalar()
    bind.dispose()
    return str(version).split(" on ")[0].split(",")[0]


def measure(
    engine_name: str, bench: Bench, workdir: Path, args: argparse.Namespace
) -> dict:
    server = SERVERS[engine_name]
    error = server.connect_error()
    if error:
        sys.exit(f"{engine_name} is unreachable ({error}): {server.start_command}")
    project = bench.copy(database=engine_name)
    venv = build_project_env([project / "pyproject.toml"], workdir)
    paths = build_releases(
        project, workdir / engine_name, args.batch, args.backfill_pause
    )
    runs, lost, written = [], 0, 0
    for attempt in range(1, args.repeat + 1):
        with server.database() as url:
            env = project_environ(venv, DATABASE_URL=url)
            flask(paths[0], env, "db", "upgrade")
            print(
                f"  {engine_name}: run {attempt} of {args.repeat}: filling users"
                f" with {args.rows:,} rows",
                flush=True,
            )
            fill(url, args.rows)
            with no_collector_pauses():
                run = deploy(engine_name, paths, env, args)
            runs.append(run)
            lost += lost_writes(url, run["load"].expected)
            written += sum(v is not None for v in run["load"].expected.values())
            version = server_version(url)
    return {
        "server": version,
        "rows": summarise(runs),
        "runs": run_ratios(runs),
        "lost": lost,
        "written": written,
        "watch_error": "; ".join(r["watch"].error for r in runs if r["watch"].error),
    }


# --- The report -------------------------------------------------------------


def priority(args: argparse.Namespace) -> str:
    """What --migration-cpu did, and why, for the report's header."""
    commands = " `flask db upgrade` (control and migration)"
    if args.migration_cpu == "shared":
        return (
            f"{commands} and the new release's gunicorn get the CPU as the serving"
            " processes (--migration-cpu shared): on this machine their start-up"
            " competes with gunicorn and the load generator for the same cores,"
            " which in production, where the migration Job and the new pods have"
            " CPU of their own, it does not."
        )
    start = (
        " and the new release's gunicorn until it answers /health (then as the"
        " serving processes, as it serves)"
        if args.start_cpu != "shared"
        else " (the new release's gunicorn is not: giving it normal scheduling"
        " back once it serves needs root)"
    )
    probe = args.probe
    how = {
        "idle": " run on one core (the last) under SCHED_IDLE (`taskset`, `chrt"
        " --idle 0`): the kernel gives them only CPU time no other process wants,"
        " and never both cores: on this machine's kernel a process that keeps"
        " every core busy delays a waking process by up to a timer tick whatever"
        " its priority (measured before the runs, a 2 ms CPU task repeated every"
        f" 5 ms: p99 {probe['alone']:.1f} ms alone, {probe['every core']:.1f} ms"
        " beside a busy loop at niceness 19 on each core, and"
        f" {probe['one core']:.1f} ms beside the same loops on one core under"
        " SCHED_IDLE).",
        "nice": " run at CPU niceness 19, the lowest priority, on every core"
        " (--migration-cpu nice).",
    }[args.migration_cpu]
    return (
        f"{commands}{start}{how} This emulates production, where the migration"
        " Job and the new pods run in pods of their own, on CPU the serving pods"
        " do not share. Without it, on this 2-core machine the command's start-up"
        " (importing Flask, SQLAlchemy and Alembic, about 1.5 s of CPU) takes the"
        " CPU from gunicorn and the load generator, and the migration phase"
        " measures that rather than the migration's locks. What the commands do in"
        " the database (their locks, the server's backends, which run at normal"
        " priority) is unchanged."
    )


def report(results: dict[str, dict], args: argparse.Namespace, load: str) -> str:
    lines = [
        SECTION,
        "",
        f"`benchmarks/rolling_deploy.py --rows {args.rows} --threads {args.threads}"
        f" --rate {args.rate:g} --phase {args.phase:g} --workers {args.workers}"
        f" --migration-cpu {args.migration_cpu} --repeat {args.repeat}"
        f" --backfill-pause {args.backfill_pause:g}` on"
        f" {machine()}; load average (1, 5, 15 min) before the run: {load}."
        f" {args.repeat} whole deploy(s) per engine, each on a new database; each"
        " table pools the requests of every run by step and phase (a migration"
        " phase lasts as long as its command, under 1 to 6 s: the p99 of one run's few"
        " hundred requests is its two or three slowest)."
        f" A users table of {args.rows:,} rows renamed from name to display_name"
        " over three releases"
        " (R1 expand: add the column and backfill it with the library's"
        f" backfill() in batches of {args.batch}, pausing after each"
        f" {args.backfill_pause:g} times as long as it took, write both; R2"
        " switch: copy again the rows R0 inserted or"
        " changed after the backfill, name given a server default (a change of"
        " the table's definition only; dropping its NOT NULL would rebuild the"
        " table on MariaDB), read and write display_name"
        " only; R3"
        " contract: display_name NOT NULL, drop name). Each release serves with"
        f" gunicorn ({args.workers} workers); {args.threads} threads send"
        f" {args.rate:g} requests a second in all (50% reads, 30% updates, 20%"
        " inserts) through every phase of every step: before (N alone), control"
        " (N while N's own `flask db upgrade` runs with nothing to do: the cost of"
        " starting the command on this machine, no DDL), migration (N while N+1's"
        " `flask db upgrade` runs, process start included), start"
        " (N while N+1's gunicorn starts), overlap (both, alternating), after"
        " (N drained and stopped, N+1 alone). Failed: an error status, a refused"
        " or reset connection, or no answer in 10 s. Stale: a read that did not"
        " return what the same thread last wrote to that row. Latency from the"
        " moment a request was due; the load generator's garbage collector is"
        " off during each deploy (a full collection of its heap paused its"
        " threads for 25 to 60 ms about once a run, counted as latency). Lock"
        " waits: the statements of the"
        " benchmark's database seen waiting for a lock (pg_stat_activity,"
        " MariaDB's processlist and InnoDB lock waits, sampled every 20 ms, so"
        " shorter waits can be missed), with the longest; CPU busy: the share of"
        " both cores' time not idle during the phase (/proc/stat)." + priority(args),
        "",
    ]
    targets = []
    for name, result in results.items():
        lines += [
            f"### {'PostgreSQL' if name == 'postgresql' else 'MariaDB'}"
            f" ({result['server']})",
            "",
            "| step | phase | duration | requests | failed | stale reads | p50 | p99"
            " | max | lock waits (longest) | CPU busy |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        by = {(r["step"], r["phase"]): r for r in result["rows"]}
        for r in result["rows"]:
            duration = f"{r['seconds']:.1f} s"
            lines.append(
                f"| {r['step']} | {r['phase']} | {duration} | {r['requests']:,}"
                f" | {r['failed']} | {r['stale']} | {r['p50_ms']:.1f} ms"
                f" | {r['p99_ms']:.1f} ms | {r['max_ms']:.0f} ms"
                f" | {r['lock_waits']} ({r['longest_wait_ms']:.0f} ms)"
                f" | {r['cpu']:.0%} |"
            )
        lines.append("")
        failed = sum(r["failed"] for r in result["rows"])
        stale = sum(r["stale"] for r in result["rows"])
        ratios, controls, ddl = [], [], []
        for step in dict.fromkeys(r["step"] for r in result["rows"]):
            before = by[(step, "before")]["p99_ms"]
            control = by[(step, "control")]["p99_ms"]
            ratio = by[(step, "migration")]["p99_ms"] / before
            ratios.append(f"{step} {ratio:.2f}x")
            controls.append(f"{control / before:.2f}x")
            ddl.append(f"{by[(step, 'migration')]['p99_ms'] / control:.2f}x")
            targets.append((name, step, ratio))
        lines += [
            f"Failed requests: {failed}; stale reads: {stale}; writes checked in the"
            f" database after the deploy: {result['written']:,}, lost:"
            f" {result['lost']}. p99 migration / before, all runs' requests"
            f" pooled: {', '.join(ratios)} (control / before:"
            f" {', '.join(controls)}; migration / control, what the migration"
            f" adds to starting the command: {', '.join(ddl)})."
            + per_run(result.get("runs", [])),
            "",
        ]
        waits = [
            f"{r['step']} {r['phase']}: {wait}"
            for r in result["rows"]
            if r["phase"] == "migration"
            for wait in r["waits"]
        ]
        if waits:
            lines += ["Longest lock waits during the migrations (up to 3 a step):", ""]
            lines += [f"- `{wait}`" for wait in waits]
            lines.append("")
        vacuums = [
            f"{r['step']} {r['phase']}: {work}"
            for r in result["rows"]
            if r["phase"] in ("control", "migration", "start")
            for work in r["autovacuum"]
        ]
        if vacuums:
            lines += [
                "Autovacuum seen working on the benchmark's database around the"
                " migrations (seconds summed over the runs; sampled with the lock"
                " waits):",
                "",
            ]
            lines += [f"- `{work}`" for work in vacuums]
            lines.append("")
        if result.get("watch_error"):
            lines += [f"The lock watcher stopped: {result['watch_error']}", ""]
        details = sorted({d for r in result["rows"] for d in r["details"]})
        if details:
            lines += ["Failures and stale reads seen (up to 5 a phase):", ""]
            lines += [f"- `{d}`" for d in details[:10]]
            lines.append("")
    total_failed = sum(r["failed"] for res in results.values() for r in res["rows"])
    worst = max(targets, key=lambda t: t[2]) if targets else None
    lines += [
        "Targets (issue 22): 0 failed requests through the rolling deploy:"
        f" {'met' if total_failed == 0 else 'NOT met'} ({total_failed});"
        " p99 during the migration at most 2x p99 before it:"
        + (
            f" {'met' if worst[2] <= 2 else 'NOT met'} (worst {worst[2]:.2f}x,"
            f" {worst[0]} {worst[1]})."
            if worst
            else " not measured."
        ),
        "",
        "Why R2 copies name again: R0 serves on through R1's migration, start and"
        " overlap, writing name only, so rows it inserts or changes after the"
        " backfill passed them have no or an old display_name. Without that copy,"
        " a trial run's R3 failed (PostgreSQL: `VALIDATE CONSTRAINT"
        " users_display_name_not_null` is violated by some row), and the lost-writes"
        " check above counts the rows whose last write would be gone.",
    ]
    if any(
        r["stale"] and r["phase"] == "overlap" and r["step"] == "R1 -> R2"
        for res in results.values()
        for r in res["rows"]
    ):
        lines += [
            "",
            "The stale reads of the R1 -> R2 overlap are R1 reading name for rows"
            " R2 wrote, as R2 writes display_name only (it must not map name, which"
            " R3's migration drops while R2 serves). Three releases cannot close"
            " that window without a trigger keeping both columns in step; four can"
            " (R2 reads display_name and writes both, R3 stops writing name, R4"
            " drops it).",
        ]
    return "\n".join(lines) + "\n"


def per_run(runs: list[list[float]]) -> str:
    """Each run's own migration / before ratios, when there are several."""
    if len(runs) < 2:
        return ""
    each = "; ".join(
        f"run {number}: " + ", ".join(f"{ratio:.2f}x" for ratio in ratios)
        for number, ratios in enumerate(runs, 1)
    )
    medians = ", ".join(
        f"{statistics.median(step):.2f}x" for step in zip(*runs, strict=True)
    )
    return f" Each run alone (the same steps): {each}; the median: {medians}."


def replace_section(document: str, section: str) -> str:
    """``document`` with this script's section replaced by ``section`` (or added)."""
    return sections.replace(document, SECTION, section)


def kept_section(path: Path) -> str:
    """This script's section of the report at ``path``, for run.py to keep."""
    return sections.kept(path, SECTION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--engines", nargs="+", choices=sorted(SERVERS), default=["postgresql", "mysql"]
    )
    parser.add_argument("--rows", type=int, default=50_000, help="users at the start")
    parser.add_argument("--threads", type=int, default=4, help="load threads")
    parser.add_argument(
        "--rate", type=float, default=100, help="requests a second, all threads"
    )
    parser.add_argument(
        "--phase",
        type=float,
        default=10,
        help="seconds per timed phase (before, overlap, after); earlier runs: 6",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--batch", type=int, default=1000, help="backfill batch size")
    parser.add_argument(
        "--backfill-pause",
        type=float,
        default=1.0,
        help="backfill()'s pause: after each batch, this many times its duration",
    )
    parser.add_argument("--limit", type=float, default=300, help="seconds per upgrade")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="whole deploys per engine, each on a new database; the tables pool"
        " their requests",
    )
    parser.add_argument(
        "--migration-cpu",
        choices=list(CPU),
        default="idle",
        help="how `flask db upgrade` (migration and control) and the new"
        " release's gunicorn start get the CPU: idle (default, SCHED_IDLE) emulates"
        " the migration Job's and new pods' own CPU; nice runs them at niceness 19;"
        " shared as the serving processes",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--keep", type=Path, help="work in this new directory and keep it (logs)"
    )
    args = parser.parse_args()
    # The new gunicorn would serve as it started unless given normal
    # scheduling back once it answers.
    args.start_cpu = args.migration_cpu if can_restore() else "shared"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    args.probe = cpu_probe()
    results = {}
    with tempfile.TemporaryDirectory(prefix="template-rolling-") as directory:
        workdir = Path(directory)
        if args.keep:
            args.keep.mkdir(parents=True)
            workdir = args.keep.resolve()
        bench = Bench(workdir, 1)
        for name in args.engines:
            print(name, flush=True)
            results[name] = measure(name, bench, workdir, args)
    load += "; after: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    section = report(results, args, load)
    document = args.output.read_text() if args.output.exists() else ""
    args.output.write_text(replace_section(document, section))
    print(section)


if __name__ == "__main__":
    main()
