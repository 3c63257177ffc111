"""The README's commands are the commands that work."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
from collections.abc import Callable
from pathlib import Path

import pathspec
import pytest
import yaml
from copier import run_copy, run_update
from packaging.version import Version

from .helpers import ROOT, UV, project_environ
from .test_deploy import fetch, free_port
from .test_update import GIT_IDENTITY, commit_all, copy_project, git, template_repo

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


# --- The generated documentation (issues 19 and 20) ---------------------------

# What a reader of the generated documentation has, or is told to get: uv
# (which runs `uvx` tools), git, pip in a virtual environment, the shell, and
# the tools of the section that uses them (deployment, the database's client).
SYSTEM_COMMANDS = {"cd", "cp", "mv", "sed", "xargs", "git", "pip", "uv", "uvx"}
DEPLOY_COMMANDS = {"docker", "kubectl", "kustomize"}
DATABASE_COMMANDS = {"createdb"}
# The packages uvx can run: this repository's locked tools (copier, ...).
UVX_PACKAGES = {
    package["name"]
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]
}
LIBRARY = Path("libs/flask-safe-migrations")


def documentation(project: Path) -> list[Path]:
    """The Markdown a rendered project documents itself with: its README, the
    template's docs/, and the library's README and docs/."""
    return [
        project / "README.md",
        *sorted((project / "docs").glob("*.md")),
        project / LIBRARY / "README.md",
        *sorted((project / LIBRARY / "docs").glob("*.md")),
    ]


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
def test_generated_documentation_commands_are_commands_a_reader_has(
    render: Callable[[str], Path], project_env: Path, name: str
) -> None:
    """Every command in the shell blocks of the generated README, docs/ and
    the library's documentation is one the reader has on a fresh machine with
    uv: a system tool, `uv run` of a command the project installs, `uvx` of a
    published tool. Before issue 19 the README said `copier check-update`:
    "copier: command not found"."""
    project = render(name)
    installed = {path.name for path in (project_env / "bin").iterdir()}
    known = SYSTEM_COMMANDS | DEPLOY_COMMANDS | DATABASE_COMMANDS | installed
    for path in documentation(project):
        for words in commands(path.read_text()):
            program = words[0]
            if program == "uv" and words[1] == "run":
                assert words[2] in installed, (path, words)
            elif program == "uvx":
                assert words[1] in UVX_PACKAGES, (path, words)
            else:
                # Bare project commands (`flask`) are for a virtual environment
                # the reader activated, as the pip setup says.
                assert program in known, (path, words)


@pytest.mark.parametrize(
    "name",
    ["defaults", "sqlite", "mysql", "gitlab", "no-ci", "no-docker", "kubernetes"],
)
def test_generated_documentation_links_lead_to_files_of_the_project(
    render: Callable[[str], Path], name: str
) -> None:
    """The README links to docs/ and the library's documentation, which link
    to each other: every relative link names a file the project has."""
    project = render(name)
    broken = []
    for path in documentation(project):
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # https://...
            if not (path.parent / target.split("#")[0]).exists():
                broken.append(f"{path.relative_to(project)}: {target}")
    assert not broken


def layout_rows(readme: str) -> list[tuple[list[str], str]]:
    """The generated README's Layout table: each row's paths, relative to the
    project, and its owner. In a cell, a name without a folder after a path
    with one is in that folder (`pkg/main.py`, `config.py`)."""
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        names = re.findall(r"`([^`]+)`", cells[0])
        folder = names[0].rstrip("/").rpartition("/")[0]
        paths = [
            name if "/" in name.rstrip("/") or not folder else f"{folder}/{name}"
            for name in names
        ]
        rows.append((paths, cells[-1]))
    return rows


def user_owned(copier_yml: Path) -> Callable[[str], bool]:
    """Whether `copier update` leaves a project path alone: copier.yml's
    update-only exclusions, matched as Copier matches them."""
    excluded = yaml.safe_load(copier_yml.read_text())["_exclude"]
    patterns = [
        match.group(1)
        for pattern in excluded
        if (match := re.search(r"== 'update' %}(.*?){%", pattern))
    ]
    kind = (
        "gitignore" if Version(pathspec.__version__) >= Version("1") else "gitwildmatch"
    )
    return pathspec.PathSpec.from_lines(kind, patterns).match_file


@pytest.mark.parametrize(
    "name",
    [
        "defaults",
        "sqlite",
        "gitlab",
        "no-ci",
        "no-docker",
        "kubernetes",
        "no-example-model",
    ],
)
def test_generated_layout_names_every_top_level_path_and_its_true_owner(
    render: Callable[[str], Path], name: str
) -> None:
    """Issue 20: the README's Layout names every file and folder at the
    project's root, and says who owns each as copier.yml decides it: "Yours"
    exactly where `copier update` leaves the files alone."""
    project = render(name)
    rows = layout_rows((project / "README.md").read_text())
    named = {path.split("/")[0] for paths, _ in rows for path in paths}
    # What the first commands make (instance/, .venv/, uv.lock, ...) may be
    # named too; what the template renders must be.
    assert {child.name for child in project.iterdir()} - {".git"} <= named
    is_users = user_owned(ROOT / "copier.yml")
    wrong = []
    for paths, owner in rows:
        for path in paths:
            found = [project / path] if (project / path).is_file() else []
            found += [f for f in (project / path).rglob("*") if f.is_file()]
            for file in found:
                relative = file.relative_to(project).as_posix()
                if relative.endswith("/.gitkeep"):
                    continue  # keeps an empty folder in git; nobody edits it
                if (owner == "Yours") != is_users(relative):
                    wrong.append(f"{relative}: {owner}")
    assert not wrong


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


def test_generated_readme_pip_setup_runs_as_written(
    render: Callable[[str], Path], tmp_path: Path
) -> None:
    """The README's pip block, run as written in a new virtual environment
    (`flask run` on a free port, FLASK_RUN_PORT): pip installs the library from
    libs/ and the project, `flask` finds the library's commands, the app
    serves, and pytest loads the library's plugin. The library README's pip
    command is the same without the development tools."""
    project = render("defaults")
    readme = (project / "README.md").read_text()
    setup = readme.split("\n## Setup\n", 1)[1].split("\n## ", 1)[0]
    pip_block = re.findall(r"```sh\n(.*?)```", setup, re.DOTALL)[1]
    lines = pip_block.strip().splitlines()
    assert lines[-1] == "flask run"
    library = (project / LIBRARY / "README.md").read_text()
    (library_pip,) = re.findall(r"```sh\n(pip install .*?)\n```", library)
    assert lines[0] == f"{library_pip} mypy pytest ruff"

    work = tmp_path / "project"
    # As rendered: other tests may have run `flask db upgrade` in the project.
    ignored = shutil.ignore_patterns("instance", ".pytest_cache", "__pycache__")
    shutil.copytree(project, work, ignore=ignored)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = project_environ(venv)
    for line in lines[:-1]:
        process = subprocess.run(
            ["bash", "-c", line],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert process.returncode == 0, f"{line}\n{process.stdout}{process.stderr}"
    assert (work / "instance" / "my_flask_app.db").is_file()

    port = free_port()
    server = subprocess.Popen(
        ["bash", "-c", lines[-1]],
        cwd=work,
        env={**env, "FLASK_RUN_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the reloader's child too
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "flask run stopped"
            try:
                status, _ = fetch(f"http://127.0.0.1:{port}/health")
                break
            except (ConnectionError, urllib.error.URLError):
                assert time.monotonic() < deadline, "flask run did not answer"
                time.sleep(0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert status == 200

    tests = subprocess.run(
        ["pytest", "-q", "-p", "no:cacheprovider"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "Test databases: built from empty" in tests.stdout


def test_update_brings_the_template_documentation_and_keeps_the_users_readme(
    tmp_path: Path,
) -> None:
    """Issue 20: documentation of what the template owns lives in files the
    template owns, so `copier update` keeps it true, while the README, which
    the user owns, keeps the user's words. (Before, copier.yml's `README.md`
    matched at any depth and kept the library's README at its first
    version.)"""
    template = template_repo(tmp_path / "template")
    project = copy_project(template, tmp_path / "project")
    with (project / "README.md").open("a") as readme:
        readme.write("\nOur notes.\n")
    commit_all(project, "Our notes")
    readme_before = (project / "README.md").read_bytes()
    documents = [
        "libs/flask-safe-migrations/README.md",
        "libs/flask-safe-migrations/docs/testing.md",
        "docs/deploying.md.jinja",
        "docs/development.md.jinja",
        "migrations/README.jinja",
        "README.md.jinja",
    ]
    for document in documents:
        with (template / "template" / document).open("a") as file:
            file.write("\nNew in 1.1.0.\n")
    commit_all(template, "Template 1.1.0")
    git(template, "tag", "v1.1.0")

    run_update(str(project), defaults=True, overwrite=True, quiet=True)

    for document in documents[:-1]:
        text = (project / document.removesuffix(".jinja")).read_text()
        assert text.endswith("\nNew in 1.1.0.\n"), document
    assert (project / "README.md").read_bytes() == readme_before


# --- The library's documentation ------------------------------------------------

LIBRARY_SOURCE = ROOT / "template" / LIBRARY


def test_library_module_index_names_every_module() -> None:
    index = (LIBRARY_SOURCE / "docs" / "modules.md").read_text()
    modules = (LIBRARY_SOURCE / "src" / "flask_safe_migrations").glob("*.py")
    assert [m.name for m in modules if f"`{m.name}`" not in index] == []


# How the library's code names the variables it reads: os.environ.get("X"),
# "X" in os.environ, click's envvar="X", and ("X", "CONFIG_KEY") or ("X",
# parser) pairs that a loop reads from the environment.
ENVIRONMENT_READ = re.compile(
    r"""environ(?:\.get)?[(\[]\s*"([A-Z][A-Z0-9_]+)"""
    r"""|"([A-Z][A-Z0-9_]+)" in (?:os\.)?environ"""
    r"""|envvar="([A-Z][A-Z0-9_]+)"""
    r"""|\(\s*"([A-Z][A-Z0-9]*_[A-Z0-9_]+)",\s*(?:"[A-Z_]+"|[a-z_]+\))"""
)


def test_library_configuration_documents_every_variable_it_reads() -> None:
    """Every environment variable the library's code, or the project's
    gunicorn.conf.py, reads by name is in docs/configuration.md."""
    sources = [
        *(LIBRARY_SOURCE / "src" / "flask_safe_migrations").glob("*.py"),
        ROOT / "template" / "gunicorn.conf.py.jinja",
    ]
    read = {
        next(filter(None, match.groups()))
        for path in sources
        for match in ENVIRONMENT_READ.finditer(path.read_text())
    }
    assert {"CI", "DATABASE_URL", "DB_WAIT_TIMEOUT", "MIGRATION_LOCK_TIMEOUT"} <= read
    documented = (LIBRARY_SOURCE / "docs" / "configuration.md").read_text()
    assert sorted(name for name in read if f"`{name}`" not in documented) == []
