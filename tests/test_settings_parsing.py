"""Every environment variable and command option the generated project reads,
fed arbitrary text through the entry point that reads it: each value is either
accepted (and then means something sane) or refused in one paragraph that
names it, never a traceback.

The entry points are the default project's own, run in this process (the
library is installed in the template's environment, and so is everything the
project imports): its package's wsgi.py (what gunicorn imports), its
gunicorn.conf.py, the `flask` command with the commands the library adds
through the ``flask.commands`` entry point, the library's migration timeouts
(what migrations/env.py reads) and its URL parser for `--scratch-url`. A
value costs milliseconds. The production start script's own check of debug
and testing mode is compared with the app's, value by value; and the start
script runs once in the project's installed environment.
"""

import contextlib
import importlib
import io
import math
import os
import re
import runpy
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from alembic.util import CommandError
from flask import Flask
from flask.cli import FlaskGroup
from flask_safe_migrations import environment as library_environment
from flask_safe_migrations.timeouts import Timeouts
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .helpers import project_environ, run
from .library.miniproject import logging_kept

PACKAGE = "my_flask_app"
SECRET_KEY = "6f1d0c9b3e8a47d2a5c1f07e9b2d4c68a3e5f7091b2c4d6e8f0a1b3c5d7e9f20"
MAX_SECONDS = 2_147_483  # PostgreSQL's longest timeout, in seconds
# Values that broke projects before, or sit on a parser's edge.
EDGES = [
    "",
    " ",
    "\t\n",
    "\u00a0",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "infinity",
    "-1",
    "0",
    "-0",
    "1",
    "0.0001",
    "1e99",
    "1e-9",
    "9" * 400,
    "1_000",
    "0x10",
    "+5",
    " 5 ",
    "5s",
    "\u0661\u0662",
    "true",
    "False",
    "yes",
    "maybe",
    "null",
    '"x"',
    "{",
    "[1, 2]",
    '{"a": 5}',
    '{"a": null}',
    '{"a": {}}',
    '{"a": {"url": 1}}',
    '{"analytics": ',
    '{"connect_args": 5}',
    '{"pool_size": "x"}',
    '{"a": "postgresql://u:hunter2@h:x/d"}',
    "postgresql://u:hunter2@h:x/d",
    "postgresql://u:hunt@er2@h/d",
    "mysql://u:hunter2@h/d?bogus=1",
    "sqlite://",
    "head",
    "heads",
    "base",
    "a@b",
    "3f1a9c2b7d40:",
    "::",
    "localhost",
    "\U0001f600",
]
VALUES = st.one_of(
    st.sampled_from(EDGES),
    st.integers().map(str),
    st.floats().map(str),
    # Any text an environment variable can hold (no NUL; no lone surrogate,
    # which os.environ cannot encode).
    st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        max_size=40,
    ),
)
# Where a bad value may carry a password: never shown.
SECRETS = {
    "DATABASE_URL",
    "SECRET_KEY",
    "FLASK_SECRET_KEY",
    "FLASK_SQLALCHEMY_BINDS",
    "FLASK_SQLALCHEMY_ENGINE_OPTIONS",
    "--scratch-url",
}


def number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.nan


def production(read: dict[str, Any]) -> bool:
    return read["debug"] is False and read["testing"] is False


def timeouts(read: dict[str, Any]) -> bool:
    return (
        0 <= read["lock_timeout"] <= MAX_SECONDS
        and 0 <= read["statement_timeout"] <= MAX_SECONDS
        and 0 <= read["lock_retries"] <= 100
    )


def gunicorn(read: dict[str, Any]) -> bool:
    port = re.fullmatch(r".+:([0-9]+)", read["bind"])
    return (
        port is not None
        and 1 <= int(port[1]) <= 65535
        and isinstance(read["workers"], int)
        and read["workers"] >= 1
    )


# Read by configure() (the project's config.py) when wsgi.py creates the app.
WSGI_SETTINGS = (
    "DATABASE_URL",
    "SECRET_KEY",
    "FLASK_SECRET_KEY",
    "FLASK_DEBUG",
    "FLASK_TESTING",
    "FLASK_SESSION_COOKIE_SECURE",
    "TRUSTED_PROXIES",
    "DATABASE_CONNECT_TIMEOUT",
    "FLASK_SQLALCHEMY_BINDS",
    "FLASK_SQLALCHEMY_ENGINE_OPTIONS",
)
TIMEOUTS = (
    "MIGRATION_LOCK_TIMEOUT",
    "MIGRATION_STATEMENT_TIMEOUT",
    "MIGRATION_LOCK_RETRIES",
)


# What an accepted value must have become: (value, what it was read as) -> ok.
SANE: dict[str, Callable[[str, Any], bool]] = {
    **dict.fromkeys(WSGI_SETTINGS, lambda value, read: production(read)),
    **dict.fromkeys(TIMEOUTS, lambda value, read: timeouts(read)),
    **dict.fromkeys(
        ["HOST", "PORT", "WEB_CONCURRENCY"], lambda value, read: gunicorn(read)
    ),
    # An empty value means the default (60 s).
    **dict.fromkeys(
        ["--timeout", "DB_WAIT_TIMEOUT"],
        lambda value, read: not value.strip() or 0 <= number(value) <= MAX_SECONDS,
    ),
    "REVISION": lambda value, read: True,
    "--scratch-url": lambda value, read: True,
}
# Cleared before each value: the settings above, and the others the project
# reads (besides FLASK_*).
CLEARED = {
    *(name for name in SANE if not name.startswith("-")),
    "TEST_DATABASE_URL",
    "TEST_SQLALCHEMY_BINDS",
    "FLASK_APP",
}


class Refused(Exception):
    """A message the user sees instead of a traceback."""


class EntryPoints:
    """The default project (a copy: db-baseline may squash its history),
    imported in this process; ``ask(case, value)`` feeds ``value`` to ``case``
    through the entry point that reads it and answers how it went:
    {"outcome": "accepted" | "refused" | "crashed", "message": ..., "read": ...}:
    "refused" is a message the user sees instead of a traceback, "crashed" an
    exception a user would see as one, and "read" what an accepted value
    became."""

    def __init__(self, project: Path) -> None:
        self.project = project
        # A production environment that every case starts from: valid, so
        # that the one variable a case changes is the one judged.
        self.base = {
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": f"sqlite:///{project / 'settings.db'}",
            "FLASK_SKIP_DOTENV": "1",
        }
        self.cases: dict[str, Callable[[str], Any]] = {
            **{name: self.variable(name, self.wsgi) for name in WSGI_SETTINGS},
            **{name: self.variable(name, self.timeouts) for name in TIMEOUTS},
            **{
                name: self.variable(name, self.gunicorn_settings)
                for name in ("HOST", "PORT", "WEB_CONCURRENCY")
            },
            "--timeout": lambda value: self.command("db-wait", f"--timeout={value}"),
            "DB_WAIT_TIMEOUT": self.variable(
                "DB_WAIT_TIMEOUT", lambda: self.command("db-wait")
            ),
            # --skip-database-check: no database needed; the command works on
            # this copy of the project, so a revision it accepts may be squashed.
            "REVISION": lambda value: self.command(
                "db-baseline", "--skip-database-check", "--", value
            ),
            "--scratch-url": self.scratch_url,
        }

    def ask(self, case: str, value: str) -> dict[str, Any]:
        output = io.StringIO()
        try:
            with (
                self.environment(),
                contextlib.chdir(self.project),
                logging_kept(),
                contextlib.redirect_stdout(output),
                contextlib.redirect_stderr(output),
            ):
                read = self.cases[case](value)
        except Refused as exc:
            return {"outcome": "refused", "message": str(exc)}
        except click.ClickException as exc:
            return {"outcome": "refused", "message": exc.message}
        except (Exception, SystemExit):  # what a user would see as a traceback
            return {"outcome": "crashed", "message": traceback.format_exc()}
        return {"outcome": "accepted", "read": read}

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """``base`` and nothing else of the project's settings in os.environ
        (a developer's own FLASK_* cannot change what is judged); os.environ
        as it was afterwards."""
        saved = dict(os.environ)
        for name in list(os.environ):
            if name.startswith("FLASK_") or name in CLEARED:
                del os.environ[name]
        os.environ.update(self.base)
        try:
            yield
        finally:
            for name in set(os.environ) - set(saved):
                del os.environ[name]
            for name, value in saved.items():
                if os.environ.get(name) != value:
                    os.environ[name] = value

    @staticmethod
    def variable(name: str, read: Callable[[], Any]) -> Callable[[str], Any]:
        def set_and_read(value: str) -> Any:
            os.environ[name] = value
            return read()

        return set_and_read

    def create_app(self) -> Flask:
        app: Flask = importlib.import_module(PACKAGE).create_app()
        return app

    def wsgi(self) -> dict[str, Any]:
        """What `gunicorn <package>.wsgi:app` does: import the module."""
        try:
            module = runpy.run_module(f"{PACKAGE}.wsgi")
        except SystemExit as exc:
            raise Refused(str(exc.code)) from None
        app = module["app"]
        self.dispose(app)
        return {"debug": app.debug, "testing": app.testing}

    def gunicorn_settings(self) -> dict[str, Any]:
        try:
            found = runpy.run_path(str(self.project / "gunicorn.conf.py"))
        except SystemExit as exc:
            raise Refused(str(exc.code)) from None
        return {"bind": found["bind"], "workers": found["workers"]}

    @staticmethod
    def timeouts() -> dict[str, Any]:
        """What migrations/env.py reads before it runs a migration: a bad
        value stops `flask db upgrade` with Alembic's CommandError, which
        Flask-Migrate shows as its message alone."""
        try:
            found = Timeouts.from_environment(os.environ)
        except CommandError as exc:
            raise Refused(exc.args[0]) from None
        return {
            "lock_timeout": found.lock_timeout,
            "statement_timeout": found.statement_timeout,
            "lock_retries": found.lock_retries,
        }

    def command(self, *args: str) -> dict[str, Any]:
        """`flask <args>`, as the `flask` command runs it: a FlaskGroup, so
        the commands of the ``flask.commands`` entry point are there (CLI
        test runner, in-process; an exception other than SystemExit is a
        crash)."""
        app = self.create_app()
        try:
            result = app.test_cli_runner().invoke(
                FlaskGroup(load_dotenv=False), list(args), catch_exceptions=False
            )
        finally:
            self.dispose(app)
        if result.exit_code:
            raise Refused(result.output.strip())
        return {"output": result.output}

    @staticmethod
    def scratch_url(value: str) -> dict[str, Any]:
        """How `flask db-baseline --scratch-url` reads its value."""
        return {"url": library_environment.database_url(value, "--scratch-url")}

    @staticmethod
    def dispose(app: Flask) -> None:
        with app.app_context():
            for engine in app.extensions["sqlalchemy"].engines.values():
                engine.dispose()


@pytest.fixture(scope="module")
def project_copy(
    render: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The default project, copied: db-baseline may squash its history."""
    target = tmp_path_factory.mktemp("settings") / "project"
    shutil.copytree(render("defaults"), target)
    return target


@pytest.fixture(scope="module")
def entry_points(project_copy: Path) -> Iterator[EntryPoints]:
    """The project's package importable here while the module runs; its
    modules forgotten after, so no other test meets them."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.syspath_prepend(str(project_copy))
        # Revision files rewritten by db-baseline are read again, not from
        # stale bytecode.
        monkeypatch.setattr(sys, "dont_write_bytecode", True)
        try:
            yield EntryPoints(project_copy)
        finally:
            for name in [n for n in sys.modules if n.split(".")[0] == PACKAGE]:
                del sys.modules[name]


def judge(case: str, value: str, answer: dict[str, Any]) -> None:
    """Accepted and sane, or refused in one paragraph naming ``case``."""
    shown = f"{case}={value!r}"
    assert answer["outcome"] != "crashed", f"{shown}:\n{answer['message']}"
    if answer["outcome"] == "accepted":
        assert SANE[case](value, answer["read"]), f"{shown} read as {answer['read']}"
        return
    message = answer["message"].strip()
    assert message, shown
    assert "\n" not in message, f"{shown}: not one paragraph:\n{message}"
    assert "Traceback" not in message, f"{shown}: {message}"
    name = case.removeprefix("FLASK_").lower()  # REVISION: "No revision '1'"
    assert name in message.lower(), f"{shown}: {message}"
    if case in SECRETS:
        assert "hunter2" not in message, f"{shown}: {message}"


@pytest.mark.parametrize("case", sorted(SANE))
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=VALUES)
@example(value="")
@example(value="1e99")
@example(value="nan")
@example(value="-1")
@example(value='{"analytics": ')
@example(value="[1, 2]")
@example(value='{"a": 5}')
@example(value="1")
def test_each_setting_is_accepted_sanely_or_refused_in_one_paragraph(
    entry_points: EntryPoints, case: str, value: str
) -> None:
    judge(case, value, entry_points.ask(case, value))


@pytest.mark.parametrize(
    ("case", "value", "words"),
    [
        ("FLASK_SQLALCHEMY_BINDS", '{"analytics": ', "FLASK_SQLALCHEMY_BINDS is not"),
        ("FLASK_SQLALCHEMY_BINDS", "[1, 2]", "must be a JSON object"),
        ("FLASK_SQLALCHEMY_BINDS", '{"a": 5}', "FLASK_SQLALCHEMY_BINDS['a'] must"),
        ("MIGRATION_STATEMENT_TIMEOUT", "1e99", "MIGRATION_STATEMENT_TIMEOUT='1e99'"),
        ("--timeout", "nan", "--timeout='nan'"),
        ("--timeout", "-1", "--timeout='-1'"),
        ("REVISION", "", "REVISION='' is not a revision"),
        ("FLASK_TESTING", "1", "FLASK_TESTING is on"),
        ("FLASK_DEBUG", "yes", "FLASK_DEBUG is on"),
    ],
)
def test_the_reported_inputs_are_refused_naming_the_setting(
    entry_points: EntryPoints, case: str, value: str, words: str
) -> None:
    """The inputs issue 19 found: tracebacks, a bind blamed on the engine
    options, and production served in debug or testing mode."""
    answer = entry_points.ask(case, value)
    assert answer["outcome"] == "refused", answer
    assert words in answer["message"], answer["message"]


# The start script, without starting anything: an invalid WEB_CONCURRENCY
# stops it right after its check of debug and testing mode.
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=VALUES)
@example(value="1")
@example(value=" TRUE ")
@example(value="on")
@example(value="maybe")
@example(value="0")
@example(value=" False ")
@example(value="off")
@example(value="")
def test_the_start_script_refuses_debug_mode_as_the_app_reads_it(
    entry_points: EntryPoints, project_copy: Path, value: str
) -> None:
    app = entry_points.ask("FLASK_DEBUG", value)
    script = subprocess.run(
        ["sh", "scripts/start.sh"],
        cwd=project_copy,
        env=project_environ(None, FLASK_DEBUG=value, WEB_CONCURRENCY="none"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert script.returncode == 2, script.stderr
    assert len(script.stderr.splitlines()) == 1, script.stderr
    refused = script.stderr.startswith("Error: FLASK_DEBUG is on")
    if app["outcome"] != "accepted":  # on, or not a yes-or-no value
        assert refused, f"FLASK_DEBUG={value!r}: {script.stderr}"
    elif value.strip(" \t\n").lower() in {"", "0", "false", "no", "off"}:
        assert not refused, f"FLASK_DEBUG={value!r}: {script.stderr}"
        assert "WEB_CONCURRENCY" in script.stderr


def test_the_start_script_runs_the_projects_own_environment(
    project_copy: Path, project_env: Path, tmp_path: Path
) -> None:
    """Run without the virtual environment active (another `flask` first on
    PATH), it uses the .venv next to it: the project's `flask db-wait` reads
    DB_WAIT_TIMEOUT."""
    other = tmp_path / "bin"
    other.mkdir()
    (other / "flask").write_text("#!/bin/sh\necho another flask >&2\nexit 3\n")
    (other / "flask").chmod(0o755)
    project = tmp_path / "project"
    shutil.copytree(project_copy, project)
    (project / ".venv").symlink_to(project_env)
    env = project_environ(None, DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}")
    env["PATH"] = f"{other}{os.pathsep}/usr/bin{os.pathsep}/bin"
    env.pop("VIRTUAL_ENV", None)
    env["SECRET_KEY"] = SECRET_KEY
    result = subprocess.run(
        ["sh", str(project / "scripts" / "start.sh"), "migrate"],
        cwd=tmp_path,
        env={**env, "DB_WAIT_TIMEOUT": "soon"},  # stops at the first command
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "another flask" not in result.stderr
    assert result.stderr.startswith("Error: DB_WAIT_TIMEOUT='soon'"), result.stderr

    (project / ".venv").unlink()  # and no environment at all: one line
    result = run(project, None, "sh", "scripts/start.sh", check=False, **env)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: "), result.stderr
    assert "Run `uv sync`" in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
