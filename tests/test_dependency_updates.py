"""Keeping the pins current: Dependabot for GitHub projects, Renovate for
GitLab projects, each valid against its published schema; and the pre-commit
hooks, whose configuration parses and pins every revision. (pre-commit cannot
fetch its hooks offline, so they are not run here.)"""

import contextlib
import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pre_commit.commands.validate_config import validate_config

from .test_workflows import check_jsonschema, check_zizmor, jsonschema_errors

Render = Callable[[str], Path]


def refused(schema: str, path: Path) -> bool:
    return bool(jsonschema_errors(schema, path))


def pre_commit_errors(config: Path) -> str:
    """What `pre-commit validate-config <config>` reports (its own command,
    in-process): "" when the file is valid."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = validate_config([str(config)])
    return (output.getvalue() or "invalid") if status else ""


@pytest.mark.parametrize(("name", "docker"), [("defaults", True), ("no-docker", False)])
def test_dependabot_updates_actions_python_hooks_and_images(
    render: Render, name: str, docker: bool, tmp_path: Path
) -> None:
    project = render(name)
    config = project / ".github" / "dependabot.yml"
    check_jsonschema("vendor.dependabot", config)
    ecosystems = {
        u["package-ecosystem"] for u in yaml.safe_load(config.read_text())["updates"]
    }
    expected = {"github-actions", "uv", "pre-commit"}
    if docker:
        expected |= {"docker", "docker-compose"}
    assert ecosystems == expected
    # The schema is not a rubber stamp.
    broken = tmp_path / "dependabot.yml"
    broken.write_text(config.read_text().replace("interval: weekly", "interval: often"))
    assert refused("vendor.dependabot", broken)


def test_renovate_config_for_gitlab_projects(render: Render, tmp_path: Path) -> None:
    project = render("gitlab")
    config = project / "renovate.json"
    check_jsonschema("vendor.renovate", config)
    assert not (project / ".github").exists()
    text = config.read_text()
    assert '"pre-commit": {\n    "enabled": true' in text  # off by default in Renovate
    broken = tmp_path / "renovate.json"
    broken.write_text(text.replace('"enabled": true', '"enabled": "yes"'))
    assert refused("vendor.renovate", broken)


@pytest.mark.parametrize("name", ["defaults", "gitlab"])
def test_zizmor_finds_nothing_in_the_whole_project(
    render: Render, name: str, tmp_path: Path
) -> None:
    """zizmor audits every file of the project it knows (the workflow and
    dependabot.yml): each Dependabot ecosystem waits a week (cooldown), and
    Renovate waits a week for the sources that publish release dates."""
    project = render(name)
    check_zizmor(project)
    dependabot = project / ".github" / "dependabot.yml"
    if dependabot.exists():
        for update in yaml.safe_load(dependabot.read_text())["updates"]:
            assert update["cooldown"]["default-days"] >= 7, update
        # zizmor reads dependabot.yml when given the project: without the
        # cooldown, the same run fails.
        shutil.copytree(project / ".github", tmp_path / ".github")
        copy = tmp_path / ".github" / "dependabot.yml"
        copy.write_text(re.sub(r"\n    cooldown:\n.*\n", "\n", copy.read_text()))
        assert "cooldown:" not in copy.read_text()
        with pytest.raises(AssertionError, match="dependabot-cooldown"):
            check_zizmor(tmp_path)
    renovate = project / "renovate.json"
    if renovate.exists():
        rules = json.loads(renovate.read_text())["packageRules"]
        (waiting,) = [rule for rule in rules if "minimumReleaseAge" in rule]
        assert waiting["minimumReleaseAge"] == "7 days"
        assert {"pypi", "github-tags"} <= set(waiting["matchDatasources"])


def test_no_update_bot_without_ci(render: Render) -> None:
    project = render("no-ci")
    assert not (project / ".github").exists()
    assert not (project / "renovate.json").exists()
    assert (project / ".pre-commit-config.yaml").is_file()


@pytest.mark.parametrize("name", ["defaults", "gitlab", "no-ci"])
def test_pre_commit_config_parses_and_pins_every_revision(
    render: Render, name: str, tmp_path: Path
) -> None:
    config = render(name) / ".pre-commit-config.yaml"
    errors = pre_commit_errors(config)
    assert not errors, errors
    repos = yaml.safe_load(config.read_text())["repos"]
    hooks = {hook["id"] for repo in repos for hook in repo["hooks"]}
    assert {"ruff-check", "ruff-format", "mypy", "flask-db-check"} <= hooks
    for repo in repos:
        if repo["repo"] != "local":
            assert re.fullmatch(r"v?\d+\.\d+\.\d+", repo["rev"]), repo
    broken = tmp_path / "broken.yaml"
    broken.write_text(config.read_text().replace("    rev: ", "    revision: ", 1))
    assert "Missing required key: rev" in pre_commit_errors(broken)
