"""The questions: defaults chain from earlier answers, and bad answers are refused
with a message that names the question and the rule, leaving nothing behind."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from copier import run_copy

from .helpers import ROOT

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
    # Free text that no file can hold on one line (items 2 and 3).
    ({"project_name": "My\nApp"}, "project_name", "holds a line break"),
    ({"description": "One\nTwo"}, "description", "holds a line break"),
    ({"description": "Tab\there"}, "description", "control character"),
    ({"author_name": "Jane\r\nDoe"}, "author_name", "holds a line break"),
    ({"author_name": ""}, "author_name", "must not be empty"),
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
        ("Test", "test_app"),
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
