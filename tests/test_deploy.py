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
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import project_environ, run
from .servers import engine
from .test_workflows import check_jsonschema

SECRET_KEY = "a-real-secret-key-" + "0123456789abcdef" * 3


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


def test_start_script_waits_migrates_and_serves(
    fresh_project: Callable[..., Path],
    project_env: Path,
    make_database: Callable[[str], str],
) -> None:
    project = fresh_project()
    database = make_database("postgresql")
    port = free_port()
    server = subprocess.Popen(
        [str(project / "scripts" / "start.sh")],
        cwd="/",  # the script finds the project from its own path
        env=project_environ(
            project_env,
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
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.communicate()[0]
            try:
                status, body = fetch(f"http://127.0.0.1:{port}/health")
                break
            except (ConnectionError, urllib.error.URLError):
                assert time.monotonic() < deadline, "gunicorn did not answer in 90 s"
                time.sleep(0.5)
        assert (status, json.loads(body)) == (200, {"status": "ok", "database": "ok"})
        status, body = fetch(f"http://127.0.0.1:{port}/")
        assert status == 200
        assert b"<h1>My Flask App</h1>" in body
        # The script exec'd gunicorn: its process is now gunicorn's master.
        command_line = Path(f"/proc/{server.pid}/cmdline").read_bytes()
        assert b"gunicorn" in command_line

        bind = engine(database)
        with bind.connect() as connection:
            versions = connection.exec_driver_sql(
                "SELECT version_num FROM alembic_version"
            )
            assert versions.all() == [("3f1a9c2b7d40",)]
        bind.dispose()
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    assert server.returncode == 0, output
    assert "Running upgrade  -> 3f1a9c2b7d40" in output
    assert re.search(r"Listening at: http://127\.0\.0\.1:\d+", output)


@pytest.mark.parametrize(
    ("secret_key", "message"),
    [
        (None, "Error: SECRET_KEY is not set"),
        ("change-me", "Error: SECRET_KEY is a placeholder"),
    ],
    ids=["missing", "placeholder"],
)
def test_gunicorn_refuses_to_start_without_a_real_secret_key(
    render: Callable[[str], Path],
    project_env: Path,
    secret_key: str | None,
    message: str,
) -> None:
    settings = {"DATABASE_URL": "postgresql://app@127.0.0.1:5432/app"}
    if secret_key is not None:
        settings["SECRET_KEY"] = secret_key
    result = run(
        render("defaults"),
        project_env,
        "gunicorn",
        check=False,
        timeout=60,
        HOST="127.0.0.1",
        PORT=str(free_port()),
        **settings,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Listening at" not in result.stderr


@pytest.mark.parametrize("database", ["postgresql", "mysql", "sqlite"])
def test_compose_file_is_valid_and_migrates_before_serving(
    fresh_project: Callable[..., Path], database: str
) -> None:
    project = fresh_project(database=database)
    compose = project / "compose.yaml"
    check_jsonschema("vendor.compose-spec", compose)
    text = compose.read_text()
    assert 'command: ["flask", "db", "upgrade"]' in text
    assert "condition: service_completed_successfully" in text
    assert ("condition: service_healthy" in text) == (database != "sqlite")
    # Secrets come from the environment, never from the repository.
    assert "${SECRET_KEY:?set SECRET_KEY}" in text
    assert "change-me" not in text


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
    assert re.search(r'^CMD \["gunicorn"\]$', dockerfile, re.MULTILINE)
    assert "FLASK_SKIP_DOTENV=1" in final_stage
    ignored = (project / ".dockerignore").read_text().splitlines()
    assert {".flaskenv", ".env", "instance/", ".venv/", "tests/"} <= set(ignored)


def test_start_script_is_executable_and_posix(render: Callable[[str], Path]) -> None:
    script = render("defaults") / "scripts" / "start.sh"
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith("#!/bin/sh\n")
    run(script.parent, None, "sh", "-n", str(script))  # parses as POSIX sh
