"""Careless edits to a generated project are named, with their fix, in one
paragraph: a package renamed without its answer in .copier-answers.yml, and
a deleted migrations/env.py (both of which `copier update` used to pass over
in silence). A model module that nothing imports (a table `flask db migrate`
never sees) is the library's check, proven in-process in
tests/library/test_model_modules.py."""

import fnmatch
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from filelock import FileLock
from flask_safe_migrations import template_files

from .helpers import ROOT, run, run_tests
from .shared import session_dir
from .test_update import commit_all, copy_project, git, template_repo


@dataclass
class BrokenUpdate:
    project: Path
    update: subprocess.CompletedProcess[str]
    # The whole migration module, and its two checks of the template's files.
    suite: subprocess.CompletedProcess[str]
    checks: subprocess.CompletedProcess[str]


CHECKS = (
    "tests/test_migrations.py::test_the_package_is_the_one_copier_answers_name",
    "tests/test_migrations.py::test_no_template_file_is_missing",
)


def break_and_update(folder: Path, venv: Path) -> dict[str, dict[str, Any]]:
    """In ``folder``: a project whose package was renamed to shop/ everywhere
    but in .copier-answers.yml, and whose migrations/env.py was deleted,
    updated to a new template version; then its migration tests run. The
    processes' results, by name."""
    template = template_repo(folder / "template")
    project = copy_project(template, folder / "project")
    git(project, "mv", "my_flask_app", "shop")
    for name in git(project, "grep", "-lw", "my_flask_app").split():
        if name != ".copier-answers.yml":
            path = project / name
            path.write_text(path.read_text().replace("my_flask_app", "shop"))
    (project / "migrations" / "env.py").unlink()
    commit_all(project, "Rename the package; delete env.py")
    security = template / "template" / "{{package_name}}" / "security.py"
    security.write_text(security.read_text() + "# 1.1.0\n")
    commit_all(template, "Template 1.1.0")
    git(template, "tag", "v1.1.0")

    update = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    processes = {
        "update": update,
        "suite": run_tests(project, venv, "tests/test_migrations.py", check=False),
        "checks": run_tests(project, venv, *CHECKS, check=False),
    }
    return {
        name: {
            "args": process.args,
            "returncode": process.returncode,
            "stdout": process.stdout,
            "stderr": process.stderr,
        }
        for name, process in processes.items()
    }


@pytest.fixture(scope="module")
def broken_update(
    tmp_path_factory: pytest.TempPathFactory, project_env: Path
) -> BrokenUpdate:
    """break_and_update(), once a session: the xdist workers share it (one
    makes it, the others read its results)."""
    folder = session_dir(tmp_path_factory) / "broken-update"
    results = folder / "results.json"
    with FileLock(f"{folder}.lock"):
        if not results.exists():
            if folder.exists():
                pytest.fail(
                    "break_and_update() failed in another worker: see its error"
                )
            folder.mkdir()
            results.write_text(json.dumps(break_and_update(folder, project_env)))
    processes = {
        name: subprocess.CompletedProcess(**fields)
        for name, fields in json.loads(results.read_text()).items()
    }
    return BrokenUpdate(folder / "project", **processes)


def warning(output: str, about: str) -> str:
    lines = [line for line in output.splitlines() if about in line]
    assert len(lines) == 1, output
    assert lines[0].startswith("Warning: "), output
    return lines[0]


def test_update_of_a_package_renamed_without_its_answer_warns(
    broken_update: BrokenUpdate,
) -> None:
    update, checks = broken_update.update, broken_update.checks
    assert update.returncode == 0, update.stderr
    line = warning(update.stderr, "package_name")
    assert "package_name: my_flask_app, but my_flask_app/ is not in" in line
    assert "set package_name in .copier-answers.yml to the package folder" in line
    assert (
        not (broken_update.project / "shop" / "security.py")
        .read_text()
        .endswith("# 1.1.0\n")
    )  # what the warning is about: the package was left at the old version
    # The generated check says the same.
    assert (
        "FAILED tests/test_migrations.py::test_the_package_is_the_one" in checks.stdout
    )
    assert (
        ".copier-answers.yml says package_name: my_flask_app, but this project's"
        " package is shop/" in checks.stdout
    )
    assert "Set `package_name: shop` in .copier-answers.yml" in checks.stdout


def test_update_of_a_project_without_env_py_warns(
    broken_update: BrokenUpdate, project_env: Path
) -> None:
    update, suite, checks = (
        broken_update.update,
        broken_update.suite,
        broken_update.checks,
    )
    line = warning(update.stderr, "env.py")
    assert "migrations/env.py is missing" in line
    assert "`uvx copier recopy --force --vcs-ref=" in line
    assert "`git add migrations/env.py`" in line
    # The generated check says the same.
    assert "FAILED tests/test_migrations.py::test_no_template_file_is_missing" in (
        checks.stdout
    )
    assert "migrations/env.py is missing" in checks.stdout
    # In the whole module, the first test that needs the database stops the
    # session with it (the plugin), rather than erroring in every such test.
    assert suite.returncode == 2, suite.stdout
    assert "Exit: migrations/env.py is missing" in suite.stdout
    assert "error" not in suite.stdout.strip().splitlines()[-1], suite.stdout
    assert suite.stdout.count("Traceback") == 0
    # So does every `flask db` command.
    upgrade = run(
        broken_update.project, project_env, "flask", "db", "upgrade", check=False
    )
    assert upgrade.returncode == 1
    assert "Traceback" not in upgrade.stderr
    assert upgrade.stderr.strip().startswith("Error: migrations/env.py is missing.")
    assert "git add migrations/env.py" in upgrade.stderr


@pytest.mark.parametrize("name", ["defaults", "sqlite"])
def test_the_checked_files_are_the_templates_python_files(
    render: Callable[[str], Path], name: str
) -> None:
    """The library's template_files.py lists every Python file the template
    renders into the package, the user's excepted: one the list missed would
    go unchecked."""
    project = render(name)
    user_owned = yaml.safe_load((ROOT / "copier.yml").read_text())["_skip_if_exists"]
    package = project / "my_flask_app"
    rendered = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if not any(
            fnmatch.fnmatch(path.relative_to(project).as_posix(), pattern)
            for pattern in user_owned
        )
    }
    assert rendered == set(template_files.PACKAGE_FILES)
    assert set(template_files.MIGRATIONS_FILES) <= {
        path.name for path in (project / "migrations").iterdir()
    }
