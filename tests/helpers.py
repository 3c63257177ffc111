"""What the template's tests share: the answer matrix and how to run a project."""

import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock
from pytest_copie.plugin import Copie
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parent.parent
UV = find_uv_bin()
# The library every project carries in libs/, rendered verbatim from here.
LIBRARY = ROOT / "template" / "libs" / "flask-safe-migrations"

# The supported answer sets, each changing one thing from the defaults, so that
# a failing test id says what is being varied.
MATRIX: dict[str, dict[str, Any]] = {
    "defaults": {},
    "sqlite": {"database": "sqlite"},
    "mysql": {"database": "mysql"},
    "no-example-model": {"example_model": False},
    "gitlab": {"ci": "gitlab"},
    "no-ci": {"ci": "none"},
    "no-docker": {"docker": False},
    "kubernetes": {"kubernetes": True},
    "python-3.14": {"python_version": "3.14"},
    "apache": {"license": "Apache-2.0"},
    "bsd": {"license": "BSD-3-Clause"},
    "proprietary": {"license": "Proprietary"},
    "custom-names": {
        "project_name": "Inventory Service",
        "description": "Tracks stock across warehouses.",
        "author_name": "Grace Hopper",
        "author_email": "grace@example.org",
    },
}
# The answer sets whose code differs: their projects are installed and run.
RUNNABLE = ["defaults", "sqlite", "mysql", "no-example-model", "custom-names"]

# Variables that would change how a rendered project behaves under test: its
# settings, and the choices uv would make for it (CI sets UV_FROZEN, and nox
# points uv at its own session environment).
_PROJECT_VARIABLES = (
    "DATABASE_URL",
    "TEST_DATABASE_URL",
    "SECRET_KEY",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "UV_FROZEN",
    "UV_LOCKED",
    "UV_NO_SYNC",
    "UV_PROJECT_ENVIRONMENT",
    "UV_PYTHON",
    "UV_SYSTEM_PYTHON",
)


def copy(copie: Copie, answers: Mapping[str, Any]) -> Path:
    """Render the template with ``answers`` and return the project directory."""
    result = copie.copy(extra_answers=dict(answers))
    assert result.exit_code == 0, result.exception
    assert result.project_dir is not None
    return result.project_dir


def project_environ(venv: Path | None, **extra: str) -> dict[str, str]:
    """The environment a rendered project runs in: the shared venv (if any) first
    on PATH, and none of the variables that would change the project's settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _PROJECT_VARIABLES and not name.startswith("FLASK_")
    }
    # The session's rendered projects are shared by tests: write nothing into them.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(venv)
    env.update(extra)
    return env


def add_model(project: Path, module: str, name: str, source: str) -> None:
    """Add a model module to a default project and import it in
    models/__init__.py, as that file asks, so autogenerate sees it."""
    models = project / "my_flask_app" / "models"
    (models / f"{module}.py").write_text(source)
    init = models / "__init__.py"
    text = init.read_text()
    for old, new in (
        (
            "from .user import User",
            f"from .{module} import {name}\nfrom .user import User",
        ),
        (
            '__all__ = ["User"]',
            f"__all__ = {sorted([name, 'User'])!r}".replace("'", '"'),
        ),
    ):
        assert old in text, f"{old!r} not in {init}"
        text = text.replace(old, new)
    init.write_text(text)


def run(
    project: Path,
    venv: Path | None,
    *command: str,
    check: bool = True,
    timeout: float = 300,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``project`` the way a user would, from its root."""
    process = subprocess.run(
        command,
        cwd=project,
        env=project_environ(venv, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and process.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {process.returncode} in {project}\n"
            f"--- stdout ---\n{process.stdout}\n--- stderr ---\n{process.stderr}"
        )
    return process


def run_tests(
    project: Path, venv: Path, *args: str, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the rendered project's own test suite (or ``args`` of it)."""
    return run(
        project,
        venv,
        *("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *args),
        check=check,
        **env,
    )


def build_project_env(
    pyprojects: list[Path], parent: Path, python: Path | None = None
) -> Path:
    """A virtual environment under ``parent`` with the dependencies (and dev
    group) of the rendered ``pyprojects``, on ``python`` (default: this one):
    built once per dependency set and interpreter, with uv, and safe to share
    between processes."""
    python = python or Path(sys.executable)
    key = hashlib.sha256(
        b"".join(p.read_bytes() for p in pyprojects) + str(python).encode()
    ).hexdigest()
    venv = parent / f"project-env-{key[:12]}"
    with FileLock(f"{venv}.lock"):
        if not (venv / "ready").exists():
            subprocess.run(
                [UV, "venv", "--quiet", "--clear", "--python", str(python), str(venv)],
                check=True,
            )
            # Compiled once here: the projects' subprocesses run with
            # PYTHONDONTWRITEBYTECODE, and would otherwise compile Flask,
            # SQLAlchemy and Alembic from source on every start.
            install = [UV, "pip", "install", "--quiet", "--compile-bytecode"]
            install += ["--python", str(venv)]
            # The projects depend on it from their own libs/ (a uv workspace
            # member); the copies are this folder, verbatim (test_render.py).
            install += ["--no-sources", "--editable", str(LIBRARY)]
            for path in pyprojects:
                install += ["-r", str(path)]
            install += ["--group", f"{pyprojects[0]}:dev"]
            subprocess.run(install, check=True)
            (venv / "ready").touch()
    return venv
