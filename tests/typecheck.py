"""mypy --strict on rendered projects, with one cache per test session.

Most of a run goes to the dependencies (Flask, SQLAlchemy, Alembic, the
library), the same for every project of the session; the cache checks them
once. The projects' own modules are checked on every run (mypy's cache tells
a module by its path and content), and the cache is outside the projects,
which the session's tests share and nothing writes into.
"""

from pathlib import Path

import pytest
from filelock import FileLock

from .helpers import run
from .shared import session_dir


def mypy(project: Path, venv: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Run the project's mypy (its [tool.mypy]: strict) as a user would."""
    # Shared by the xdist workers; one run at a time writes it.
    cache = session_dir(tmp_path_factory) / "mypy-cache"
    with FileLock(f"{cache}.lock"):
        run(project, venv, "mypy", f"--cache-dir={cache}")
