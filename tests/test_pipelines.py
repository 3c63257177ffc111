"""The generated CI pipelines: valid against their published schemas, free of
zizmor findings, and the commands they run pass here, read from the files
themselves so that no second list can drift from them.

GitHub Actions and GitLab CI run the same commands in two syntaxes. Parsing
both proves that, per engine: the same jobs, commands, variables (the
service's host aside), services and Pythons, and names each command that only
one of them runs. The commands then run once per engine, in a project of one
CI system, alternating (GitHub for PostgreSQL and SQLite, GitLab for MariaDB),
plus every command that only the other system's file has.
"""

import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_copie.plugin import Copie
from sqlalchemy.engine import make_url

from .helpers import UV, copy, run
from .test_workflows import check_github_workflow, check_jsonschema, check_zizmor

CI_SYSTEMS = ("github", "gitlab")
DATABASES = ("postgresql", "mysql", "sqlite")
PIPELINE_FILE = {"github": ".github/workflows/ci.yml", "gitlab": ".gitlab-ci.yml"}
SCHEMA = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
VARIANTS = [(ci, database) for ci in CI_SYSTEMS for database in DATABASES]
IDS = [f"{ci}-{database}" for ci, database in VARIANTS]
# Whose commands run for each engine; the other system's are proven the same
# by test_github_and_gitlab_run_the_same_commands.
RUN = {"postgresql": "github", "mysql": "gitlab", "sqlite": "github"}
OTHER = {"github": "gitlab", "gitlab": "github"}
# Where a pipeline's database service is reached: GitHub maps the service's
# port to the runner, GitLab gives it a host name (its alias).
SERVICE_HOST = {"github": "127.0.0.1", "gitlab": "db"}


@dataclass
class Job:
    name: str
    commands: list[str]
    env: dict[str, str] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)
    # What the job's database service is started with (GitLab gives the
    # service the job's variables).
    service_env: dict[str, str] = field(default_factory=dict)
    pythons: list[str] = field(default_factory=list)


def _strings(mapping: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in mapping.items()}


def pipeline_jobs(project: Path, ci: str) -> list[Job]:
    """The jobs of the project's pipeline, with the shell commands they run."""
    document = yaml.safe_load((project / PIPELINE_FILE[ci]).read_text())
    if ci == "github":
        return [
            Job(
                name,
                [step["run"] for step in job["steps"] if "run" in step],
                _strings(job.get("env", {})),
                [service["image"] for service in job.get("services", {}).values()],
                {
                    k: str(v)
                    for service in job.get("services", {}).values()
                    for k, v in service.get("env", {}).items()
                },
                job.get("strategy", {}).get("matrix", {}).get("python-version", []),
            )
            for name, job in document["jobs"].items()
        ]
    jobs = []
    for name, job in document.items():
        if not (isinstance(job, dict) and "script" in job):
            continue
        variables = _strings(job.get("variables", {}))
        matrix = job.get("parallel", {}).get("matrix", [{}])
        jobs.append(
            Job(
                name,
                list(job["script"]),
                {k: v for k, v in variables.items() if "DATABASE_URL" in k},
                [service["name"] for service in job.get("services", [])],
                {k: v for k, v in variables.items() if "DATABASE_URL" not in k},
                [str(v) for entry in matrix for v in entry.get("PYTHON_VERSION", [])],
            )
        )
    return jobs


@pytest.fixture(scope="module")
def rendered(copie_session: Copie) -> Callable[[str, str], Path]:
    """Each (ci, database) project, rendered once per module, read only."""
    projects: dict[tuple[str, str], Path] = {}

    def _rendered(ci: str, database: str) -> Path:
        if (ci, database) not in projects:
            projects[ci, database] = copy(
                copie_session, {"ci": ci, "database": database}
            )
        return projects[ci, database]

    return _rendered


@pytest.mark.parametrize(("ci", "database"), VARIANTS, ids=IDS)
def test_pipeline_is_valid_and_uses_the_production_engine(
    rendered: Callable[[str, str], Path], ci: str, database: str
) -> None:
    project = rendered(ci, database)
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


def only_in(jobs: dict[str, Job], others: dict[str, Job]) -> Iterator[tuple[str, str]]:
    """(job, command) of each command in ``jobs`` that the same job of
    ``others`` does not run."""
    for name, job in jobs.items():
        for command in job.commands:
            if command not in others[name].commands:
                yield name, command


@pytest.mark.parametrize("database", DATABASES)
def test_github_and_gitlab_run_the_same_commands(
    rendered: Callable[[str, str], Path], database: str
) -> None:
    """Per engine, the two CI files differ in syntax only: the same jobs run
    the same commands in the same order with the same variables (the
    service's host aside) against the same service image, on the same
    Pythons. They name the branch a change merges into apart: GitHub's
    checkout has it (origin/...), GitLab's fetches it (FETCH_HEAD), for the
    running-release check and the SQL lint (PostgreSQL); the pipeline run
    covers both spellings."""
    github, gitlab = (
        {job.name: job for job in pipeline_jobs(rendered(ci, database), ci)}
        for ci in CI_SYSTEMS
    )
    assert github.keys() == gitlab.keys() == {"lint", "test"}
    differing = {*only_in(github, gitlab), *only_in(gitlab, github)}
    base = {
        "github": '"origin/${GITHUB_BASE_REF:-$DEFAULT_BRANCH}"',
        "gitlab": "FETCH_HEAD",
    }
    modules = ["running_release"] + (["lint_sql"] if database == "postgresql" else [])
    assert differing == {
        ("lint", 'git fetch --quiet origin "$CI_DEFAULT_BRANCH"'),
        *(
            ("lint", f"uv run python -m flask_safe_migrations.{module} {base[ci]}")
            for module in modules
            for ci in CI_SYSTEMS
        ),
    }
    for name in github:
        same = [c for c in github[name].commands if c in gitlab[name].commands]
        assert same == [c for c in gitlab[name].commands if c in same], name
    for ci, jobs in (("github", github), ("gitlab", gitlab)):
        test = jobs["test"]
        for variable, url in test.env.items():
            assert make_url(url).host == SERVICE_HOST[ci], (ci, variable, url)
    assert {k: host_free(v) for k, v in github["test"].env.items()} == {
        k: host_free(v) for k, v in gitlab["test"].env.items()
    }
    assert github["test"].services == gitlab["test"].services
    assert github["test"].service_env == gitlab["test"].service_env
    assert github["test"].pythons == gitlab["test"].pythons
    assert github["test"].pythons, "no Python matrix found"


# GitHub's default branch (the lint job's DEFAULT_BRANCH), an expression.
DEFAULT_BRANCH = "${{ github.event.repository.default_branch }}"


def host_free(url: str) -> str:
    return make_url(url).set(host="service").render_as_string(hide_password=False)


@pytest.mark.parametrize(
    ("ci", "database"),
    [(ci, database) for database, ci in RUN.items()],
    ids=[f"{ci}-{database}" for database, ci in RUN.items()],
)
def test_pipeline_commands_pass_here(
    fresh_project: Callable[..., Path],
    rendered: Callable[[str, str], Path],
    make_database: Callable[[str], str],
    ci: str,
    database: str,
) -> None:
    """Run every command of the pipeline's test job, in order, with its
    environment, against a real server of the production engine, then each
    command that only the other CI system's file runs. The lint job does not
    depend on the database: it runs for PostgreSQL, whose lint job has the
    most commands."""
    project = fresh_project(ci=ci, database=database)
    run(project, None, UV, "lock", "--quiet")  # the user commits uv.lock
    # The branch a change merges into, as each CI system finds it: an origin
    # whose main is this commit (origin/main; `git fetch origin main`).
    for command in (
        ("init", "--quiet", "--initial-branch=main"),
        ("add", "-A"),
        ("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "c"),
        ("remote", "add", "origin", str(project)),
        ("fetch", "--quiet", "origin"),
    ):
        run(project, None, "git", *command)
    url = make_database(database) if database != "sqlite" else None
    other = {
        job.name: job
        for job in pipeline_jobs(rendered(OTHER[ci], database), ci=OTHER[ci])
    }
    for job in pipeline_jobs(project, ci):
        if job.name != "test" and database != "postgresql":
            continue
        # What GitLab CI predefines, and what GitHub's expression gives.
        env = {
            "CI_DEFAULT_BRANCH": "main",
            **job.env,
            **{k: "main" for k, v in job.env.items() if v == DEFAULT_BRANCH},
        }
        for variable in ("DATABASE_URL", "TEST_DATABASE_URL"):
            if variable in env:
                assert url is not None
                env[variable] = url  # the CI service's URL, here
        extra = [c for c in other[job.name].commands if c not in job.commands]
        script = "\n".join(
            [
                "set -eux",
                f'uv() {{ {shlex.quote(UV)} "$@"; }}',
                *job.commands,
                *extra,
            ]
        )
        run(project, None, "bash", "-c", script, timeout=600, **env)
