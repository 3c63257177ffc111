"""The generated CI pipelines: valid against their published schemas, free of
zizmor findings, and the commands they run pass here, read from the files
themselves so that no second list can drift from them."""

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from .helpers import UV, run
from .test_workflows import check_github_workflow, check_jsonschema, check_zizmor

PIPELINE_FILE = {"github": ".github/workflows/ci.yml", "gitlab": ".gitlab-ci.yml"}
SCHEMA = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
VARIANTS = [
    (ci, database)
    for ci in PIPELINE_FILE
    for database in ("postgresql", "mysql", "sqlite")
]
IDS = [f"{ci}-{database}" for ci, database in VARIANTS]


@dataclass
class Job:
    name: str
    commands: list[str]
    env: dict[str, str] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)


def pipeline_jobs(project: Path, ci: str) -> list[Job]:
    """The jobs of the project's pipeline, with the shell commands they run."""
    document = yaml.safe_load((project / PIPELINE_FILE[ci]).read_text())
    if ci == "github":
        return [
            Job(
                name,
                [step["run"] for step in job["steps"] if "run" in step],
                {k: str(v) for k, v in job.get("env", {}).items()},
                [service["image"] for service in job.get("services", {}).values()],
            )
            for name, job in document["jobs"].items()
        ]
    return [
        Job(
            name,
            list(job["script"]),
            {k: str(v) for k, v in job.get("variables", {}).items()},
            [service["name"] for service in job.get("services", [])],
        )
        for name, job in document.items()
        if isinstance(job, dict) and "script" in job
    ]


@pytest.mark.parametrize(("ci", "database"), VARIANTS, ids=IDS)
def test_pipeline_is_valid_and_uses_the_production_engine(
    fresh_project: Callable[..., Path], ci: str, database: str
) -> None:
    project = fresh_project(ci=ci, database=database)
    path = project / PIPELINE_FILE[ci]
    if ci == "github":
        check_github_workflow(path)
    else:
        check_jsonschema(SCHEMA[ci], path)
    check_zizmor(project)  # every file zizmor audits: dependabot.yml too

    (test_job,) = [job for job in pipeline_jobs(project, ci) if job.name == "test"]
    expected_image = {"postgresql": "postgres:17", "mysql": "mariadb:11.4"}.get(
        database
    )
    assert test_job.services == ([expected_image] if expected_image else [])
    assert ("TEST_DATABASE_URL" in test_job.env) == (database != "sqlite")
    # DATABASE_URL for the CLI steps only: the tests refuse to empty its database.
    assert "DATABASE_URL" not in test_job.env
    prefix = 'DATABASE_URL="$TEST_DATABASE_URL" ' if database != "sqlite" else ""
    assert f"{prefix}uv run flask db upgrade" in test_job.commands
    assert f"{prefix}uv run flask db check" in test_job.commands


@pytest.mark.parametrize(("ci", "database"), VARIANTS, ids=IDS)
def test_pipeline_commands_pass_here(
    fresh_project: Callable[..., Path],
    project_env: Path,
    make_database: Callable[[str], str],
    ci: str,
    database: str,
) -> None:
    """Run every command of the pipeline's test job, in order, with its
    environment, against a real server of the production engine. The lint job
    does not depend on the database: it runs once per CI system."""
    project = fresh_project(ci=ci, database=database)
    run(project, None, UV, "lock", "--quiet")  # the user commits uv.lock
    url = make_database(database) if database != "sqlite" else None
    for job in pipeline_jobs(project, ci):
        if job.name != "test" and database != "postgresql":
            continue
        env = dict(job.env)
        for variable in ("DATABASE_URL", "TEST_DATABASE_URL"):
            if variable in env:
                assert url is not None
                env[variable] = url  # the CI service's URL, here
        script = "\n".join(
            ["set -eux", f'uv() {{ {shlex.quote(UV)} "$@"; }}', *job.commands]
        )
        run(project, None, "bash", "-c", script, timeout=600, **env)
