"""Careless edits to a generated project are named, with their fix, in one
paragraph: a model module that nothing imports (a table `flask db migrate`
never sees), a package renamed without its answer in .copier-answers.yml, and
a deleted migrations/env.py (both of which `copier update` used to pass over
in silence)."""

import ast
import fnmatch
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .helpers import ROOT, run, run_tests
from .test_update import commit_all, copy_project, git, template_repo

TAG_MODEL = '''\
"""A tag, in a module that models/__init__.py does not import."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class Tag(Model):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
'''

# A test that imports the module itself: the generated check must still see
# that the app does not.
TAG_TEST = """\
from my_flask_app.models.tag import Tag


def test_tag_table() -> None:
    assert Tag.__tablename__ == "tags"
"""


def test_a_model_module_nothing_imports_is_refused(
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    models = project / "my_flask_app" / "models"
    (models / "tag.py").write_text(TAG_MODEL)
    # A module without classes that nothing imports is not a model: no finding.
    (models / "helpers.py").write_text('def slug(text: str) -> str:\n    return ""\n')
    (project / "tests" / "test_tag.py").write_text(TAG_TEST)
    revisions = sorted((project / "migrations" / "versions").glob("*.py"))
    run(project, project_env, "flask", "db", "upgrade")

    migrate = run(
        project, project_env, "flask", "db", "migrate", "-m", "t", check=False
    )

    output = migrate.stdout + migrate.stderr
    assert migrate.returncode == 1, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "is not imported" in line]
    assert len(lines) == 1, output
    message = lines[0]
    assert message.startswith("ERROR [flask_migrate] Error: ")
    assert "my_flask_app/models/tag.py (Tag) is not imported" in message
    assert (
        "Add `from .tag import Tag` to my_flask_app/models/__init__.py"
        ' (and "Tag" to __all__)' in message
    )
    assert "helpers" not in message
    assert sorted((project / "migrations" / "versions").glob("*.py")) == revisions

    # The generated test fails the same way, though a test imports the module.
    suite = run_tests(
        project,
        project_env,
        "tests/test_tag.py",
        "tests/test_migrations.py::test_every_model_module_is_imported",
        check=False,
    )
    assert "1 failed, 1 passed" in suite.stdout, suite.stdout
    assert message.removeprefix("ERROR [flask_migrate] Error: ") in suite.stdout


@dataclass
class BrokenUpdate:
    project: Path
    update: subprocess.CompletedProcess[str]
    suite: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def broken_update(
    tmp_path_factory: pytest.TempPathFactory, project_env: Path
) -> BrokenUpdate:
    """A project whose package was renamed to shop/ everywhere but in
    .copier-answers.yml, and whose migrations/env.py was deleted, updated to
    a new template version; then its migration tests run."""
    tmp = tmp_path_factory.mktemp("broken-update")
    template = template_repo(tmp / "template")
    project = copy_project(template, tmp / "project")
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
    suite = run_tests(project, project_env, "tests/test_migrations.py", check=False)
    return BrokenUpdate(project, update, suite)


def warning(output: str, about: str) -> str:
    lines = [line for line in output.splitlines() if about in line]
    assert len(lines) == 1, output
    assert lines[0].startswith("Warning: "), output
    return lines[0]


def test_update_of_a_package_renamed_without_its_answer_warns(
    broken_update: BrokenUpdate,
) -> None:
    update, suite = broken_update.update, broken_update.suite
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
        "FAILED tests/test_migrations.py::test_the_package_is_the_one" in suite.stdout
    )
    assert (
        ".copier-answers.yml says package_name: my_flask_app, but this project's"
        " package is shop/" in suite.stdout
    )
    assert "Set `package_name: shop` in .copier-answers.yml" in suite.stdout


def test_update_of_a_project_without_env_py_warns(
    broken_update: BrokenUpdate, project_env: Path
) -> None:
    update, suite = broken_update.update, broken_update.suite
    line = warning(update.stderr, "env.py")
    assert "migrations/env.py is missing" in line
    assert "`uvx copier recopy --force --vcs-ref=" in line
    assert "`git add migrations/env.py`" in line
    # The generated check says the same, and the session stops with it rather
    # than erroring in every test that needs the database.
    assert "FAILED tests/test_migrations.py::test_no_template_file_is_missing" in (
        suite.stdout
    )
    assert "Exit: migrations/env.py is missing" in suite.stdout
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
    """template_files.py lists every Python file the template renders into the
    package, the user's excepted: one the list missed would go unchecked."""
    project = render(name)
    module = project / "my_flask_app" / "migration_tools" / "template_files.py"
    lists = {
        target.id: ast.literal_eval(node.value)
        for node in ast.parse(module.read_text()).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
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
    listed = {*lists["PACKAGE_FILES"]}
    if name == "defaults":  # PostgreSQL
        listed |= {*lists["POSTGRESQL_FILES"]}
    assert rendered == listed
    assert {*lists["MIGRATIONS_FILES"]} <= {
        path.name for path in (project / "migrations").iterdir()
    }
