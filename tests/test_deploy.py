"""The deployment path, proven on the host (no Docker engine runs here): the
start script migrates a real database and serves over HTTP with gunicorn,
gunicorn refuses unsafe settings, and the compose file is valid."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from .helpers import project_environ, run
from .servers import engine
from .test_workflows import check_jsonschema

SECRET_KEY = "a-real-secret-key-9c4e1f7a02b85d36e7c1094fa3b6d2e58f07c1a94be3d652"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Served(NamedTuple):
    port: int
    pid: int
    output: list[str]  # filled when the server has stopped


@contextmanager
def start_script(project: Path, venv: Path, database: str) -> Iterator[Served]:
    """Run scripts/start.sh until gunicorn answers /health; stop it after."""
    port = free_port()
    server = subprocess.Popen(
        [str(project / "scripts" / "start.sh")],
        cwd="/",  # the script finds the project from its own path
        env=project_environ(
            venv,
            DATABASE_URL=database,
            SECRET_KEY=SECRET_KEY,
            HOST="127.0.0.1",
            PORT=str(port),
            WEB_CONCURRENCY="2",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = Served(port, server.pid, [])
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.communicate()[0]
            try:
                fetch(f"http://127.0.0.1:{port}/health")
                break
            except (ConnectionError, urllib.error.URLError):
                assert time.monotonic() < deadline, "gunicorn did not answer in 90 s"
                time.sleep(0.5)
        yield served
    finally:
        server.send_signal(signal.SIGTERM)
        served.output.append(server.communicate(timeout=30)[0])
    assert server.returncode == 0, served.output[0]


def alembic_versions(database: str) -> list[tuple[str]]:
    bind = engine(database)
    with bind.connect() as connection:
        versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
        rows = [tuple(row) for row in versions]
    bind.dispose()
    return rows


NEWER = "4b2e8d1c9a07"


def test_start_script_migrates_serves_and_serves_a_database_a_newer_release_migrated(
    render: Callable[[str], Path],
    project_env: Path,
    make_database: Callable[[str], str],
) -> None:
    """(i) On an empty database the script waits, migrates and serves, through
    gunicorn. (ii) A rollback, or an old instance during a rolling deploy: the
    database is then one revision ahead of the code. The script warns, skips
    the upgrade (which would fail: "Can't locate revision") and serves. (The
    older release's `flask db upgrade` and `flask db current` explaining it:
    tests/library/test_newer_release.py.)"""
    project = render("defaults")
    database = make_database("postgresql")
    with start_script(project, project_env, database) as served:
        status, body = fetch(f"http://127.0.0.1:{served.port}/health")
        assert (status, json.loads(body)) == (200, {"status": "ok", "database": "ok"})
        status, body = fetch(f"http://127.0.0.1:{served.port}/")
        assert status == 200
        assert b"<h1>My Flask App</h1>" in body
        # The script exec'd gunicorn: its process is now gunicorn's master.
        command_line = Path(f"/proc/{served.pid}/cmdline").read_bytes()
        assert b"gunicorn" in command_line
        assert alembic_versions(database) == [("3f1a9c2b7d40",)]
    output = served.output[0]
    assert "Running upgrade  -> 3f1a9c2b7d40" in output
    assert re.search(r"Listening at: http://127\.0\.0\.1:\d+", output)

    # What the newer release's migration (a nullable column) left behind.
    bind = engine(database)
    with bind.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE users ADD COLUMN nickname VARCHAR(50)")
        connection.exec_driver_sql(
            f"UPDATE alembic_version SET version_num = '{NEWER}'"
        )
    bind.dispose()

    with start_script(project, project_env, database) as served:
        status, body = fetch(f"http://127.0.0.1:{served.port}/health")
        assert (status, json.loads(body)) == (200, {"status": "ok", "database": "ok"})
        assert fetch(f"http://127.0.0.1:{served.port}/")[0] == 200
        assert alembic_versions(database) == [(NEWER,)]
    output = served.output[0]
    assert (
        f"Warning: The database is at revision {NEWER}, which this code does"
        " not have" in " ".join(output.split())
    )
    assert "Skipping `flask db upgrade`." in output
    assert "Can't locate revision" not in output
    assert "Running upgrade" not in output


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "Error: SECRET_KEY is not set"),
        ({"SECRET_KEY": "change-me"}, "Error: SECRET_KEY is a placeholder"),
        (
            {"SECRET_KEY": SECRET_KEY, "FLASK_TESTING": "1"},
            "Error: FLASK_TESTING is on, and production servers never run",
        ),
    ],
    ids=["missing", "placeholder", "testing-mode"],
)
def test_gunicorn_refuses_to_start_without_a_real_secret_key_or_in_testing_mode(
    render: Callable[[str], Path],
    project_env: Path,
    settings: dict[str, str],
    message: str,
) -> None:
    result = run(
        render("defaults"),
        project_env,
        "gunicorn",
        check=False,
        timeout=60,
        HOST="127.0.0.1",
        PORT=str(free_port()),
        DATABASE_URL="postgresql://app@127.0.0.1:5432/app",
        **settings,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Listening at" not in result.stderr


@pytest.mark.parametrize(
    ("database", "answers"),
    [("postgresql", "defaults"), ("mysql", "mysql"), ("sqlite", "sqlite")],
)
def test_compose_file_is_valid_and_migrates_before_serving(
    render: Callable[[str], Path], database: str, answers: str
) -> None:
    project = render(answers)
    compose = project / "compose.yaml"
    check_jsonschema("vendor.compose-spec", compose)
    text = compose.read_text()
    assert 'command: ["/app/scripts/start.sh", "migrate"]' in text
    assert "condition: service_completed_successfully" in text
    assert ("condition: service_healthy" in text) == (database != "sqlite")
    # Secrets come from the environment, never from the repository.
    assert "${SECRET_KEY:?set SECRET_KEY}" in text
    assert "change-me" not in text


@pytest.mark.parametrize("answers", ["defaults", "mysql"])
def test_compose_puts_pgbouncer_between_the_app_and_postgresql_only(
    render: Callable[[str], Path], answers: str
) -> None:
    """PostgreSQL: the app and its migrations reach the database through
    PgBouncer in transaction mode (one DATABASE_URL for both); MariaDB: directly
    (its migration lock belongs to the session)."""
    compose = yaml.safe_load((render(answers) / "compose.yaml").read_text())
    services = compose["services"]

    def host(url: str) -> str:  # the password is a ${...} for compose to fill
        return url.rsplit("@", 1)[1].split(":")[0]

    url = services["migrate"]["environment"]["DATABASE_URL"]
    assert services["web"]["environment"] == services["migrate"]["environment"]
    if answers == "mysql":
        assert "pgbouncer" not in services
        assert host(url) == "db"
        return
    assert host(url) == "pgbouncer"
    pooler = services["pgbouncer"]
    assert pooler["environment"]["POOL_MODE"] == "transaction"
    assert host(pooler["environment"]["DATABASE_URL"]) == "db"
    assert pooler["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pgbouncer" in services["migrate"]["depends_on"]


def test_dockerfile_builds_a_small_unprivileged_image(
    render: Callable[[str], Path],
) -> None:
    project = render("defaults")
    dockerfile = (project / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert stages == ["python:${PYTHON_VERSION}-slim"] * 2  # build, then final
    assert "ARG PYTHON_VERSION=3.11" in dockerfile
    assert "uv sync --locked --no-dev" in dockerfile
    final_stage = dockerfile.split("\nFROM ", 2)[2]
    assert "USER app" in final_stage
    assert "/bin/uv" not in final_stage
    # gunicorn through the start script, which refuses debug and testing mode.
    assert re.search(
        r'^CMD \["/app/scripts/start.sh", "serve"\]$', dockerfile, re.MULTILINE
    )
    assert "FLASK_SKIP_DOTENV=1" in final_stage
    ignored = (project / ".dockerignore").read_text().splitlines()
    assert {".flaskenv", ".env", "instance/", ".venv/", "tests/"} <= set(ignored)


def test_start_script_is_executable_and_posix(render: Callable[[str], Path]) -> None:
    script = render("defaults") / "scripts" / "start.sh"
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith("#!/bin/sh\n")
    run(script.parent, None, "sh", "-n", str(script))  # parses as POSIX sh


@pytest.mark.parametrize(
    ("variable", "value"),
    [("WEB_CONCURRENCY", "two"), ("WEB_CONCURRENCY", "0"), ("PORT", "80x")],
)
def test_start_script_refuses_a_bad_port_or_worker_count_without_a_traceback(
    render: Callable[[str], Path], variable: str, value: str
) -> None:
    """gunicorn reads both before its settings file and answers a traceback."""
    project = render("defaults")
    result = run(
        project,
        None,
        "sh",
        "scripts/start.sh",
        check=False,
        timeout=60,
        **{variable: value},
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"Error: {variable} must be a whole number above 0, not '{value}'."
    ), result.stderr
    assert "Traceback" not in result.stderr
