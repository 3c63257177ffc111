"""The README's commands are the commands that work."""

import re
import shlex
import subprocess
from pathlib import Path

from .helpers import ROOT, UV, project_environ

README = (ROOT / "README.md").read_text()


def shell_blocks(heading: str) -> list[list[str]]:
    """The lines of each shell block in the README section under ``heading``."""
    section = README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [
        block.strip().splitlines()
        for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    ]


def test_quick_start_commands_scaffold_a_working_project(tmp_path: Path) -> None:
    """Run the quick start as written, with two substitutions: TEMPLATE is this
    checkout, and --vcs-ref=HEAD renders its working tree, not its newest tag."""
    commands = shell_blocks("Quick start")[0]
    assert commands[0] == "uvx copier copy --defaults TEMPLATE my-app"
    template = f"--vcs-ref=HEAD {shlex.quote(str(ROOT))}"
    script = "\n".join(
        [
            "set -euo pipefail",
            f'uv() {{ "{UV}" "$@"; }}',
            f'uvx() {{ "{UV}" tool run "$@"; }}',
            *(command.replace("TEMPLATE", template) for command in commands),
        ]
    )
    process = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=project_environ(None),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert re.search(r"\d+ passed", process.stdout)
    assert (tmp_path / "my-app" / "instance" / "my_flask_app.db").is_file()


def test_ci_runs_the_readmes_test_command() -> None:
    (test_command,) = shell_blocks("Quick start")[1]
    ci_commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert ci_commands[-1] == test_command
