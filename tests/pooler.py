"""A real PgBouncer in transaction mode in front of the test PostgreSQL server.

Debian's `pgbouncer` package (/usr/sbin/pgbouncer) refuses to run as root, so
it runs as the user `postgres` from a directory that user can read and write.
Transaction mode with two server connections per database, as managed
PostgreSQL services set it up: each transaction may run on another server
connection, and session state (locks, settings, prepared statements) stays
with whichever connection it was made on.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL

PGBOUNCER = "pgbouncer"
SERVER_CONNECTIONS = 2  # default_pool_size: per database and user
INSTALL = "apt-get install -y pgbouncer"


def find() -> str | None:
    """The pgbouncer program, or None."""
    return shutil.which(PGBOUNCER) or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def pgbouncer(server: URL) -> Iterator[URL]:
    """Run PgBouncer in front of ``server`` (an admin URL); yields the URL of
    the same server through the pooler. Stopped by its PID afterwards."""
    program = find()
    assert program, f"pgbouncer is not installed ({INSTALL})"
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    password = f" password={server.password}" if server.password else ""
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host={server.host or '127.0.0.1'} port={server.port or 5432}"
        f"{password}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {directory / 'users.txt'}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {SERVER_CONNECTIONS}\n"
        "max_client_conn = 500\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"pidfile = {directory / 'pgbouncer.pid'}\n"
        f"logfile = {directory / 'pgbouncer.log'}\n"
    )
    (directory / "users.txt").write_text(f'"{server.username or "postgres"}" ""\n')
    for path in directory.iterdir():
        path.chmod(0o644)
    command = [program, "-d", *(["-u", user] if user else []), str(ini)]
    started = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert started.returncode == 0, started.stderr + started.stdout
    pidfile = directory / "pgbouncer.pid"
    pid = None
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if pid is None and pidfile.exists() and pidfile.read_text().strip():
                pid = int(pidfile.read_text())
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            log = directory / "pgbouncer.log"
            raise AssertionError(
                "pgbouncer did not start: "
                + (log.read_text() if log.exists() else "no log")
            )
        pid = pid or int(pidfile.read_text())
        yield server.set(host="127.0.0.1", port=port)
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        shutil.rmtree(directory, ignore_errors=True)
