"""CI definitions are valid against their published schemas and free of
zizmor findings of medium severity or worse (zizmor's default persona)."""

import subprocess
import sys
from pathlib import Path

from .helpers import ROOT

BIN = Path(sys.executable).parent


def check_github_workflow(path: Path) -> None:
    for command in (
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", path],
        [BIN / "zizmor", "--offline", "--min-severity=medium", path],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_template_repository_workflow_is_valid_and_clean() -> None:
    check_github_workflow(ROOT / ".github" / "workflows" / "ci.yml")
