"""CI definitions are valid against their published schemas and free of
zizmor findings of medium severity or worse (zizmor's default persona)."""

import subprocess
import sys
from pathlib import Path

from .helpers import ROOT

BIN = Path(sys.executable).parent


def check(*command: str | Path) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def check_jsonschema(schema: str, path: Path) -> None:
    """Validate ``path`` against a schema that check-jsonschema ships."""
    check(BIN / "check-jsonschema", "--builtin-schema", schema, path)


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
