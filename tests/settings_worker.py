"""Run in a rendered project's environment (not the template's): feeds one value
at a time to a setting the project reads, through the entry point that reads
it, and answers how it went.

    python settings_worker.py PROJECT PACKAGE

reads JSON lines {"case": ..., "value": ...} on stdin and writes JSON lines
{"outcome": "accepted" | "refused" | "crashed", "message": ..., "read": ...}:
"refused" is a message the user sees instead of a traceback, "crashed" an
exception a user would see as one, and "read" what an accepted value became.
Each case's entry point is one that exists before and after the settings moved
to migration_tools/environment.py, so the same test runs on both.
"""

import contextlib
import importlib
import io
import json
import os
import runpy
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT = Path(sys.argv[1])
PACKAGE = sys.argv[2]
sys.path.insert(0, str(PROJECT))
os.chdir(PROJECT)

import click  # noqa: E402
from alembic.util import CommandError  # noqa: E402

create_app = importlib.import_module(PACKAGE).create_app
SECRET_KEY = "6f1d0c9b3e8a47d2a5c1f07e9b2d4c68a3e5f7091b2c4d6e8f0a1b3c5d7e9f20"
# A production environment that every case starts from: valid, so that the one
# variable a case changes is the one judged.
BASE = {
    "SECRET_KEY": SECRET_KEY,
    "DATABASE_URL": f"sqlite:///{PROJECT / 'settings.db'}",
    "FLASK_SKIP_DOTENV": "1",
}
os.environ.update(BASE)


class Refused(Exception):
    pass


def with_variable(name: str, value: str, run: Callable[[], Any]) -> Any:
    os.environ[name] = value
    try:
        return run()
    finally:
        os.environ.pop(name, None)
        os.environ.update(BASE)


def wsgi() -> dict[str, Any]:
    """What `gunicorn <package>.wsgi:app` does: import the module."""
    try:
        module = runpy.run_module(f"{PACKAGE}.wsgi")
    except SystemExit as exc:
        raise Refused(str(exc.code)) from None
    app = module["app"]
    return {"debug": app.debug, "testing": app.testing}


def gunicorn_settings() -> dict[str, Any]:
    try:
        settings = runpy.run_path(str(PROJECT / "gunicorn.conf.py"))
    except SystemExit as exc:
        raise Refused(str(exc.code)) from None
    return {"bind": settings["bind"], "workers": settings["workers"]}


def timeouts() -> dict[str, Any]:
    module = importlib.import_module(f"{PACKAGE}.migration_tools.timeouts")
    try:
        found = module.Timeouts.from_environment(os.environ)
    except (CommandError, click.ClickException) as exc:
        raise Refused(getattr(exc, "message", str(exc))) from None
    return {
        "lock_timeout": found.lock_timeout,
        "statement_timeout": found.statement_timeout,
        "lock_retries": found.lock_retries,
    }


def command(*args: str) -> dict[str, Any]:
    """`flask <args>`, as the flask command runs it (CliRunner, in-process)."""
    result = create_app().test_cli_runner().invoke(args=list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if result.exit_code:
        raise Refused(result.output.strip())
    return {"output": result.output}


def scratch_url(value: str) -> dict[str, Any]:
    try:
        module = importlib.import_module(f"{PACKAGE}.migration_tools.environment")
    except ImportError:  # before: config.py
        module = importlib.import_module(f"{PACKAGE}.config")
    try:
        return {"url": module.database_url(value, "--scratch-url")}
    except click.ClickException as exc:
        raise Refused(exc.message) from None


def variable(name: str, read: Callable[[], Any]) -> Callable[[str], Any]:
    return lambda value: with_variable(name, value, read)


CASES: dict[str, Callable[[str], Any]] = {
    **{
        name: variable(name, wsgi)
        for name in (
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
    },
    **{
        name: variable(name, timeouts)
        for name in (
            "MIGRATION_LOCK_TIMEOUT",
            "MIGRATION_STATEMENT_TIMEOUT",
            "MIGRATION_LOCK_RETRIES",
        )
    },
    **{
        name: variable(name, gunicorn_settings)
        for name in ("HOST", "PORT", "WEB_CONCURRENCY")
    },
    "--timeout": lambda value: command("db-wait", f"--timeout={value}"),
    "DB_WAIT_TIMEOUT": variable("DB_WAIT_TIMEOUT", lambda: command("db-wait")),
    # --skip-database-check: no database needed; the command works on this
    # copy of the project, so a revision it accepts may be squashed.
    "REVISION": lambda value: command(
        "db-baseline", "--skip-database-check", "--", value
    ),
    "--scratch-url": scratch_url,
}


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                read = CASES[request["case"]](request["value"])
            answer = {"outcome": "accepted", "read": read}
        except Refused as exc:
            answer = {"outcome": "refused", "message": str(exc)}
        except click.ClickException as exc:
            answer = {"outcome": "refused", "message": exc.message}
        except BaseException:  # what a user would see as a traceback
            answer = {"outcome": "crashed", "message": traceback.format_exc()}
        print(json.dumps(answer, default=str), flush=True)


if __name__ == "__main__":
    main()
