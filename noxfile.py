"""Sessions for working on the template: `uv run nox -s tests` runs its tests."""

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"

ROOT = Path(__file__).parent


def sync(session: nox.Session, *groups: str) -> None:
    """Install the locked dependency groups (uv.lock) into the session's venv."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--no-default-groups",
        *(f"--group={group}" for group in groups),
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


@nox.session
def tests(session: nox.Session) -> None:
    """Render the template across its answers and test the projects it makes.

    Needs the PostgreSQL and MariaDB servers described in README.md.
    """
    sync(session, "test")
    # One xdist worker more than the CPUs: a third of a worker's time is spent
    # waiting (on the database servers, on subprocesses, on the deploy tests'
    # sleeps), and the extra worker runs tests meanwhile.
    if hasattr(os, "sched_getaffinity"):  # the CPUs this process may use
        cpus = len(os.sched_getaffinity(0))
    else:
        cpus = os.cpu_count() or 1
    workers = cpus + 1
    session.run("pytest", "-n", str(workers), *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and format-check the template's own Python code and its library
    (template/libs/), and check the library with mypy --strict."""
    sync(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")  # [tool.mypy] in pyproject.toml: files, strict


@nox.session
def demo(session: nox.Session) -> None:
    """Render the template with its defaults into build/demo, to look at."""
    sync(session, "test")
    target = ROOT / "build" / "demo"
    session.run(
        "copier",
        "copy",
        "--defaults",
        "--overwrite",
        "--vcs-ref=HEAD",
        *session.posargs,
        str(ROOT),
        str(target),
    )
    session.log(f"Rendered into {target}")
