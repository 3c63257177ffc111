"""Every supported Python: the generated CI tests each version from the
project's minimum up, and the generated project's own suite passes on Python
3.12 and 3.13 as well as on 3.11 (the rest of these tests).

The interpreters come from pyenv (`$(pyenv root)/versions`) or from uv
(`uv python find`). A missing one skips its test with a message, and fails it
under CI=true, where `.ci/run` installs them."""

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pytest_copie.plugin import Copie

from .helpers import UV, build_project_env, copy, run, run_tests

SUPPORTED = ["3.11", "3.12", "3.13", "3.14"]


def pyenv_roots() -> list[Path]:
    roots = [os.environ.get("PYENV_ROOT"), Path.home() / ".pyenv"]
    pyenv = shutil.which("pyenv")
    if pyenv:
        result = subprocess.run([pyenv, "root"], capture_output=True, text=True)
        roots.insert(0, result.stdout.strip())
    return [Path(root) for root in roots if root]


def find_python(version: str) -> Path | None:
    """An interpreter of ``version`` (e.g. "3.12") that really runs, or None."""
    candidates = [
        path
        for root in pyenv_roots()
        for path in sorted(
            root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True
        )
    ]
    found = subprocess.run(
        [UV, "python", "find", "--no-python-downloads", version],
        capture_output=True,
        text=True,
    )
    if found.returncode == 0:
        candidates.append(Path(found.stdout.strip()))
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def require_python(version: str) -> Path:
    python = find_python(version)
    if python is None:
        message = (
            f"Python {version} is not installed: install it with `pyenv install"
            f" {version}` or `uv python install {version}`."
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return python


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_generated_suite_passes_on_newer_python(
    copie_session: Copie, tmp_path_factory: pytest.TempPathFactory, version: str
) -> None:
    python = require_python(version)
    project = copy(copie_session, {"python_version": version})
    venv = build_project_env(
        [project / "pyproject.toml"], tmp_path_factory.getbasetemp().parent, python
    )
    interpreter = run(project, venv, "python", "-c", "import sys; print(sys.version)")
    assert interpreter.stdout.startswith(f"{version}.")
    result = run_tests(project, venv)
    assert re.search(r"\d+ passed", result.stdout), result.stdout
    # The CLI too (its commands come from an entry point); the suite's
    # test_models_match_the_migrations already runs `flask db check`'s check.
    run(project, venv, "flask", "db", "upgrade")


def ci_versions(project: Path, ci: str) -> list[str]:
    if ci == "github":
        document = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
        return document["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    document = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    (matrix,) = document["test"]["parallel"]["matrix"]
    assert document["test"]["image"] == "python:${PYTHON_VERSION}-slim"
    return matrix["PYTHON_VERSION"]


@pytest.mark.parametrize("ci", ["github", "gitlab"])
@pytest.mark.parametrize("minimum", ["3.11", "3.13"])
def test_ci_tests_every_python_from_the_minimum_up(
    fresh_project: Callable[..., Path], ci: str, minimum: str
) -> None:
    project = fresh_project(ci=ci, python_version=minimum)
    assert ci_versions(project, ci) == SUPPORTED[SUPPORTED.index(minimum) :]
