"""CI definitions are valid against their published schemas and free of
zizmor findings of medium severity or worse (zizmor's default persona).

check-jsonschema runs in-process (its own command, through click's test
runner): it is a Python package whose import takes most of a run, so a
process of its own for each file cost seconds each on a loaded machine.
"""

import subprocess
import sys
from pathlib import Path

from check_jsonschema.cli.main_command import main as check_jsonschema_command
from click.testing import CliRunner

from .helpers import ROOT

BIN = Path(sys.executable).parent


def check(*command: str | Path) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def jsonschema_errors(schema: str, path: Path) -> str:
    """What `check-jsonschema --builtin-schema <schema> <path>` reports wrong
    with ``path`` ("" when it is valid)."""
    result = CliRunner().invoke(
        check_jsonschema_command, ["--builtin-schema", schema, str(path)]
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.output if result.exit_code else ""


def check_jsonschema(schema: str, path: Path) -> None:
    """Validate ``path`` against a schema that check-jsonschema ships."""
    errors = jsonschema_errors(schema, path)
    assert not errors, errors


def check_zizmor(path: Path) -> None:
    """No zizmor finding of medium severity or worse in ``path``: a file, or a
    whole project, where zizmor finds every file it audits (workflows,
    actions, dependabot.yml)."""
    check(BIN / "zizmor", "--offline", "--min-severity=medium", path)


def check_github_workflow(path: Path) -> None:
    check_jsonschema("vendor.github-workflows", path)
    check_zizmor(path)


def test_template_repository_workflow_is_valid_and_clean() -> None:
    check_github_workflow(ROOT / ".github" / "workflows" / "ci.yml")
