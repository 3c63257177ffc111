"""The questions: defaults chain from earlier answers, and bad answers are refused
with a message that names the question and the rule, leaving nothing behind."""

import ast
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_copy

from .helpers import ROOT, run

# (answers, question named in the message, words of the rule)
BAD_ANSWERS: list[tuple[dict[str, Any], str, str]] = [
    ({"project_name": "   "}, "project_name", "must not be empty"),
    ({"package_name": "My-App"}, "package_name", "not a lowercase Python identifier"),
    ({"package_name": "2fast"}, "package_name", "not a lowercase Python identifier"),
    ({"package_name": "_private"}, "package_name", "starting with a letter"),
    ({"package_name": "class"}, "package_name", "is a Python keyword"),
    ({"package_name": "json"}, "package_name", "standard-library module"),
    ({"package_name": "logging"}, "package_name", "standard-library module"),
    ({"package_name": "flask"}, "package_name", "would shadow a package"),
    ({"package_name": "sqlalchemy"}, "package_name", "would shadow a package"),
    ({"package_name": "alembic"}, "package_name", "would shadow a package"),
    ({"package_name": "migrations"}, "package_name", "would shadow a package"),
    ({"package_name": "tests"}, "package_name", "would shadow a package"),
    ({"package_name": "app"}, "package_name", "would shadow a package"),
    # Names that passed before and broke the project (issue 11, item 7).
    ({"package_name": "shop_"}, "package_name", "ends with an underscore"),
    ({"package_name": "shop\n"}, "package_name", "not a lowercase Python identifier"),
    ({"package_name": "pluggy"}, "package_name", "would shadow a package"),
    ({"package_name": "mypy"}, "package_name", "would shadow a package"),
    ({"package_name": "packaging"}, "package_name", "would shadow a package"),
    ({"package_name": "iniconfig"}, "package_name", "would shadow a package"),
    ({"package_name": "py"}, "package_name", "would shadow a package"),
    ({"package_name": "python_dotenv"}, "package_name", "would shadow a package"),
    ({"package_name": "sitecustomize"}, "package_name", 'ends in "customize"'),
    ({"package_name": "usercustomize"}, "package_name", 'ends in "customize"'),
    ({"package_name": "xxsubtype"}, "package_name", "standard-library module"),
    ({"package_name": "a" * 31}, "package_name", "use 30 or fewer"),
    # Names of the project's own modules, folders and commands (issue 19).
    ({"package_name": "test_app"}, "package_name", "(tests/test_app.py)"),
    ({"package_name": "env"}, "package_name", "(migrations/env.py)"),
    ({"package_name": "deploy"}, "package_name", "would shadow a package"),
    ({"package_name": "python"}, "package_name", "command `python`"),
    ({"package_name": "mako_render"}, "package_name", "command `mako-render`"),
    # Free text that no file can hold on one line (items 2 and 3).
    ({"project_name": "My\nApp"}, "project_name", "holds a line break"),
    ({"description": "One\nTwo"}, "description", "holds a line break"),
    ({"description": "Tab\there"}, "description", "control character"),
    ({"author_name": "Jane\r\nDoe"}, "author_name", "holds a line break"),
    ({"author_name": ""}, "author_name", "must not be empty"),
    # Unicode non-characters, which no YAML file holds (issue 19).
    ({"project_name": "Shop\uffff"}, "project_name", "Unicode non-character"),
    ({"description": "\ufdd0 orders"}, "description", "Unicode non-character"),
    ({"author_name": "Jane\U0010fffe"}, "author_name", "Unicode non-character"),
    ({"author_email": "grace"}, "author_email", "not an email address"),
    ({"author_email": "grace@localhost"}, "author_email", "not an email address"),
    # Refused later by the build backend before (item 10).
    ({"author_email": "a,b@x.com"}, "author_email", "not an email address"),
    ({"author_email": "a@x..com"}, "author_email", "not an email address"),
    ({"author_email": "jos\u00e9@x.com"}, "author_email", "in ASCII"),
    ({"author_email": '"a b"@x.com'}, "author_email", "not an email address"),
    ({"author_email": "a@x.com\n"}, "author_email", "not an email address"),
    ({"python_version": "3.10"}, "python_version", "Invalid choice"),
    ({"database": "oracle"}, "database", "Invalid choice"),
    ({"license": "GPL-3.0"}, "license", "Invalid choice"),
    ({"ci": "jenkins"}, "ci", "Invalid choice"),
    ({"docker": "perhaps"}, "docker", "must be true or false"),
    ({"example_model": "maybe"}, "example_model", "must be true or false"),
]


@pytest.mark.parametrize(
    ("answers", "question", "rule"),
    BAD_ANSWERS,
    ids=[f"{q}={next(iter(a.values()))!r}" for a, q, _ in BAD_ANSWERS],
)
def test_bad_answer_is_refused_and_nothing_is_written(
    tmp_path: Path, answers: dict[str, Any], question: str, rule: str
) -> None:
    destination = tmp_path / "project"
    with pytest.raises(ValueError, match=question) as error:
        run_copy(
            str(ROOT),
            destination,
            data=answers,
            defaults=True,
            vcs_ref="HEAD",
            quiet=True,
        )
    assert rule in str(error.value)
    assert not destination.exists()


def test_cli_reports_a_bad_answer_on_its_last_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """Copier's CLI prints a traceback for a bad --data answer (its behaviour, not
    the template's); the message that ends it names the question and the fix."""
    destination = tmp_path / "project"
    process = subprocess.run(
        [
            *(sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref=HEAD"),
            *("--data", "package_name=flask", str(ROOT), str(destination)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == 1
    last_line = process.stderr.strip().splitlines()[-1]
    assert "package_name 'flask' would shadow a package" in last_line
    assert 'choose another name, such as "my_flask"' in last_line
    assert not destination.exists()


@pytest.mark.parametrize(
    ("project_name", "package_name"),
    [
        ("My Flask App", "my_flask_app"),
        ("Billing API v2", "billing_api_v2"),
        ("  Café-Orders!  ", "cafe_orders"),
        # Issue 11: a good default from any name, never one the validator refuses.
        ("Crème Brûlée \u2013 Ålesund", "creme_brulee_alesund"),
        ("Магазин Обуви", "magazin_obuvi"),
        ("Ψηφιακό Κατάστημα", "psifiako_katastima"),
        ("商店", "my_flask_app"),
        ("2048 Game", "app_2048_game"),
        ("Flask", "flask_app"),
        ("Test", "my_test_app"),  # test, then test_app: both refused
        ("Test App", "my_test_app"),
        ("Env", "env_app"),
        ("Python", "python_app"),
        ("App", "my_app"),
        ("Site Customize", "site_customize_app"),
        ("sitecustomize", "sitecustomize_app"),
        (
            "A Very Long Project Name For Billing Customers",
            "a_very_long_project_name_for",
        ),
    ],
)
def test_package_name_defaults_from_project_name(
    tmp_path: Path, project_name: str, package_name: str
) -> None:
    run_copy(
        str(ROOT),
        tmp_path,
        data={"project_name": project_name},
        defaults=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    assert (tmp_path / package_name / "__init__.py").is_file()


def test_interactive_prompt_explains_a_bad_answer_and_asks_again(
    tmp_path: Path,
) -> None:
    """At the prompt, a bad answer shows the rule (no traceback) and is asked again."""
    pexpect = pytest.importorskip("pexpect")
    destination = tmp_path / "project"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "copier", "copy", "--vcs-ref=HEAD", str(ROOT), str(destination)],
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 200),
        env={
            "TERM": "xterm",
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "COPIER_SETTINGS_PATH": os.environ["COPIER_SETTINGS_PATH"],
        },
    )
    try:
        child.expect("Project name")
        child.sendline("")  # accept "My Flask App"
        child.expect("Python package name")
        child.sendline("\x15flask")  # Ctrl-U clears the default first
        child.expect("would shadow a package")
        child.sendline("\x15inventory")
        # Accept every remaining default.
        for prompt in (
            "One-line description",
            "Author name",
            "Author email",
            "Minimum Python version",
            "Production database engine",
            "example User model",
            "Continuous integration",
            "Dockerfile and compose.yaml",
            "Kubernetes manifests",
            "License",
        ):
            child.expect(prompt)
            child.sendline("")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert "Traceback" not in (child.before or "")
    assert child.exitstatus == 0
    assert (destination / "inventory" / "__init__.py").is_file()


# --- package_name against every name the project holds (issue 19) ----------

RESERVED: dict[str, Any] = yaml.safe_load((ROOT / "copier.yml").read_text())[
    "reserved_package_names"
]["default"]
# Answer sets that, between them, render every file the template has.
EVERY_FILE = ["defaults", "sqlite", "mysql", "kubernetes", "gitlab"]


def refused(name: str) -> bool:
    """Whether package_name's validator refuses ``name`` (its rules, read
    from copier.yml; the refusals themselves are in BAD_ANSWERS)."""
    return (
        not re.fullmatch(r"[a-z][a-z0-9_]*", name)
        or name.endswith(("_", "customize"))
        or len(name) > 30
        or any(name in RESERVED[kind] for kind in RESERVED)
    )


def bound_names(tree: ast.Module) -> set[str]:
    """The names a module binds at its top level."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {
                name.id
                for target in targets
                for name in ast.walk(target)
                if isinstance(name, ast.Name)
            }
    return names


def colliding_names(project: Path, package: str) -> dict[str, str]:
    """Each name a package of that name would collide with in ``project``,
    and where the project uses it."""
    names: dict[str, str] = {}
    for path in sorted(project.rglob("*.py")):
        relative = path.relative_to(project).as_posix()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                names.setdefault(module.split(".")[0], f"imported by {relative}")
        # pytest and mypy import the modules outside the package by their
        # bare names (the revisions are Alembic's, loaded by path; the
        # library's modules are flask_safe_migrations's, installed by name).
        if not relative.startswith((f"{package}/", "migrations/versions/", "libs/")):
            names[path.stem] = f"module {relative}"
        # A module that imports the package itself binds its name: every
        # other name it binds would be redefined by a package of that name.
        if any(
            isinstance(node, ast.Import)
            and any(alias.name.split(".")[0] == package for alias in node.names)
            for node in tree.body
        ):
            for name in bound_names(tree):
                names.setdefault(name, f"bound in {relative}, beside `import`")
    for child in project.iterdir():
        names.setdefault(child.name, "the project's root folder")
    names.pop(package, None)
    return names


def test_package_name_refuses_every_name_the_generated_code_uses(
    render: Callable[[str], Path],
) -> None:
    """Every top-level module the generated code imports, every module it
    holds outside the package (tests/test_app.py is `test_app` to pytest and
    mypy), every folder at its root: each is a name package_name refuses, so
    a new import, test module or folder fails here until copier.yml lists it."""
    names: dict[str, str] = {}
    for answers in EVERY_FILE:
        names |= colliding_names(render(answers), "my_flask_app")
    unrefused = {name: where for name, where in names.items() if not refused(name)}
    assert not unrefused, (
        "add these to copier.yml's reserved_package_names (taken or modules):"
        f" {unrefused}"
    )
    # Each module's entry says where it is, for the validator's message; and
    # no entry outlives its module.
    modules = {
        name: where.removeprefix("module ")
        for name, where in names.items()
        if where.startswith("module ") and re.fullmatch(r"[a-z][a-z0-9_]*", name)
    }
    assert modules == RESERVED["modules"]


def test_package_name_refuses_every_name_the_environment_installs(
    project_env: Path, render: Callable[[str], Path]
) -> None:
    """The modules and distributions of the project's installed dependency
    tree (the project's distribution is named after the package, and a
    project cannot also depend on a distribution of its own name), and its
    commands:
    [project.scripts] installs the package's own command, named after it,
    beside them (a package named `python` would replace the interpreter's)."""
    names = subprocess.run(
        [
            str(project_env / "bin" / "python"),
            "-c",
            "import importlib.metadata as m\n"
            "print(*m.packages_distributions())\n"
            "print(*(d.metadata['Name'] for d in m.distributions()))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    normalized = {re.sub(r"[-_.]+", "_", name).lower() for name in names}
    # A command named `my-app` is the package my_app's.
    normalized |= {
        path.name.replace("-", "_") for path in (project_env / "bin").iterdir()
    }
    # The rendered projects themselves (another test installs one, with its
    # command, into this environment): a project's environment holds its own
    # package, which is not a name taken from it.
    normalized -= {
        yaml.safe_load((render(name) / ".copier-answers.yml").read_text())[
            "package_name"
        ]
        for name in ("defaults", "custom-names")
    }
    unrefused = sorted(name for name in normalized if not refused(name))
    assert not unrefused, (
        "add these to copier.yml's reserved_package_names (taken or commands):"
        f" {unrefused}"
    )


@pytest.mark.parametrize("package_name", ["sqlite", "reuse"])
def test_a_package_named_like_a_name_in_its_tests_passes_ruff(
    tmp_path: Path, project_env: Path, package_name: str
) -> None:
    """Before issue 19, tests/conftest.py imported the package beside
    `from <package>.migration_tools import reuse, sqlite`: a package named
    `sqlite` or `reuse` failed ruff (F811) and mypy."""
    run_copy(
        str(ROOT),
        tmp_path,
        data={"package_name": package_name},
        defaults=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    # The project's own ruff (its dev group): the template's test session has none.
    run(tmp_path, project_env, "ruff", "check", "--no-cache", "--quiet", ".")
