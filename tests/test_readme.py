"""The README's commands are the commands that work."""

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from copier import run_copy

from .helpers import ROOT, UV, project_environ
from .test_update import GIT_IDENTITY, commit_all, git

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


# --- The generated README (issue 19) ------------------------------------------

# What a reader of the generated README has, or is told to get: uv (which runs
# `uvx` tools), git, pip in a virtual environment, the shell, and the
# deployment tools of the section that uses them.
SYSTEM_COMMANDS = {"cd", "cp", "mv", "sed", "xargs", "git", "pip", "uv", "uvx"}
DEPLOY_COMMANDS = {"docker", "kubectl", "kustomize"}
# The packages uvx can run: this repository's locked tools (copier, ...).
UVX_PACKAGES = {
    package["name"]
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]
}


def commands(markdown: str) -> list[list[str]]:
    """Each command of the shell blocks in ``markdown``, as words, without
    comments or leading variable assignments; `&&` and `|` split commands."""
    found: list[list[str]] = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, re.DOTALL):
        for line in block.splitlines():
            words: list[str] = []
            for word in [*shlex.split(line, comments=True), "&&"]:
                if word in {"&&", "||", "|", ";"}:
                    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
                        words.pop(0)
                    if words:
                        found.append(words)
                    words = []
                else:
                    words.append(word)
    return found


@pytest.mark.parametrize("name", ["defaults", "kubernetes", "gitlab"])
def test_generated_readme_commands_are_commands_a_reader_has(
    render: Callable[[str], Path], project_env: Path, name: str
) -> None:
    """Every command in the generated README's shell blocks is one the reader
    has on a fresh machine with uv: a system tool, `uv run` of a command the
    project installs, `uvx` of a published tool. Before issue 19 the README
    said `copier check-update`: "copier: command not found"."""
    project = render(name)
    installed = {path.name for path in (project_env / "bin").iterdir()}
    for words in commands((project / "README.md").read_text()):
        program = words[0]
        if program == "uv" and words[1] == "run":
            assert words[2] in installed, words
        elif program == "uvx":
            assert words[1] in UVX_PACKAGES, words
        else:
            # Bare project commands (`flask`) are for a virtual environment
            # the reader activated, as the pip setup says.
            assert program in SYSTEM_COMMANDS | DEPLOY_COMMANDS | installed, words


def test_generated_readme_update_commands_run_as_written(tmp_path: Path) -> None:
    """The README's update block, run as written (uvx as installed) in a
    project copied from a tagged release of this template, in a clean git
    tree."""
    template = tmp_path / "template"
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, tracked):
        if (name == "copier.yml" or name.startswith("template/")) and (
            ROOT / name
        ).is_file():
            (template / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, template / name)
    git(template, "init", "-q", "-b", "main")
    commit_all(template, "Template 1.0.0")
    git(template, "tag", "v1.0.0")
    project = tmp_path / "my-app"
    run_copy(str(template), project, defaults=True, quiet=True)
    git(project, "init", "-q")
    commit_all(project, "Initial commit from template")

    readme = (project / "README.md").read_text()
    section = readme.split("\n## Updating from the template\n", 1)[1]
    (block,) = re.findall(r"```sh\n(.*?)```", section.split("\n### ", 1)[0], re.DOTALL)
    lines = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert lines == [
        "uvx copier check-update",
        "uvx copier update --defaults",
        "git diff",
    ]
    script = "\n".join(
        ["set -euo pipefail", f'uvx() {{ "{UV}" tool run "$@"; }}', *lines]
    )
    # A fresh machine: uv, but no `copier` command on PATH.
    env = {**project_environ(None), **GIT_IDENTITY}
    env["PATH"] = os.pathsep.join(
        folder
        for folder in env["PATH"].split(os.pathsep)
        if not (Path(folder) / "copier").exists()
    )
    process = subprocess.run(
        ["bash", "-c", script],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "Project is up-to-date" in process.stdout + process.stderr
    assert not git(project, "status", "--porcelain")
