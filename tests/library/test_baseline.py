"""`flask db-baseline REVISION` replaces the history up to REVISION with one
baseline revision that keeps its id.

On SQLite, PostgreSQL and MariaDB, with rows in the tables: a database at the
third of four revisions (tables, a column added with a server default, an
index, a unique constraint, a foreign key, a data step) is squashed there;
that database then upgrades to the newest revision with its rows, `flask db
check` is clean, and the project's migration suite passes against a new
database (it builds the schema from empty through the baseline, checks the
models against it, and walks every revision down and up with rows). And the
command refuses, writing nothing, what would strand a database or lose work.

In-process, on a MiniProject with the template's first revision and the
history of tests/baseline/; the suite runs through pytester
(generated_suite.py).
"""

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from .. import servers
from ..baseline import models, revisions
from ..baseline.revisions import REVISION_2, REVISION_3, REVISION_4
from .generated_suite import (
    MIGRATION_TESTS,
    NO_CACHE,
    add_initial_revision,
    run_in_process,
    write_generated_tests,
)
from .miniproject import MiniProject

pytest_plugins = ["pytester"]


def with_history(
    make_mini_project: Callable[..., MiniProject], **options: str
) -> MiniProject:
    """A project whose history has four revisions (tests/baseline/), and the
    models of the newest."""
    project = make_mini_project(**options)
    for name, text in models.MODULES.items():
        project.write_file(f"models/{name}", text)
    add_initial_revision(project)
    for name, text in revisions.HISTORY.items():
        (project.versions_dir / name).write_text(text)
    return project


def connect(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        return sa.create_engine(url)
    return servers.engine(url)


def execute(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run ``statements``; the rows of the last one that returns rows."""
    engine = connect(url)
    rows: list[tuple[object, ...]] = []
    with engine.begin() as connection:
        for statement in statements:
            result = connection.execute(sa.text(statement))
            if result.returns_rows:
                rows = [tuple(row) for row in result]
    engine.dispose()
    return rows


def files(project: MiniProject) -> list[str]:
    """The revision files in migrations/versions/ and migrations/squashed/."""
    migrations = project.migrations_dir
    return sorted(
        str(path.relative_to(migrations))
        for folder in ("versions", "squashed")
        for path in (migrations / folder).rglob("*.py")
    )


@pytest.mark.parametrize("engine", ["sqlite", "postgresql", "mysql"])
def test_a_database_past_the_baseline_keeps_its_rows_and_new_ones_build_from_it(
    pytester: pytest.Pytester,
    make_mini_project: Callable[..., MiniProject],
    make_database: Callable[[str], str],
    environment: pytest.MonkeyPatch,
    tmp_path: Path,
    engine: str,
) -> None:
    server = engine != "sqlite"
    deployed = make_database(engine) if server else f"sqlite:///{tmp_path / 'app.db'}"
    project = with_history(
        make_mini_project, database_url=deployed, production_engine=engine
    )
    write_generated_tests(project)
    app = project.app()

    def flask(*args: str) -> str:
        result = project.flask(app, *args)
        assert result.exit_code == 0, result.output
        return result.output

    flask("db", "upgrade", REVISION_3)
    execute(
        deployed,
        "INSERT INTO teams (name) VALUES ('ops')",
        "INSERT INTO users (email, name, team_id) VALUES ('ada@example.com', 'Ada', 1)",
        "INSERT INTO users (email, name, active, team_id)"
        " VALUES ('bob@example.com', 'Bob', true, 2)",
    )

    # On a server, the schemas are built and compared in a scratch database of
    # the same engine, which is left empty.
    scratch = ["--scratch-url", make_database(engine)] if server else []
    output = flask("db-baseline", REVISION_3, "--drop-data-steps", *scratch)

    assert f"is at {REVISION_3}: kept" in output
    if server:
        left = connect(scratch[1])
        assert sa.inspect(left).get_table_names() == []
        left.dispose()
    squashed = [f"squashed/{REVISION_3}/{name}" for name in revisions.SQUASHED]
    (baseline,) = [f for f in files(project) if f.endswith(f"{REVISION_3}_baseline.py")]
    assert files(project) == sorted([*squashed, baseline, revisions.LATER])
    text = (project.migrations_dir / baseline).read_text()
    assert f'revision: str = "{REVISION_3}"' in text
    assert "down_revision: str | None = None" in text
    assert "alembic_version" not in text
    assert "nextval" not in text  # PostgreSQL's SERIAL sequences stay implicit
    assert "add_teams.py (execute())" in " ".join(text.split())  # the data step

    # (i) The database carries on from the revision it was at, with its rows.
    assert f"{REVISION_3} -> {REVISION_4}" in flask("db", "upgrade")
    flask("db", "check")  # exits 1 if the models and migrations differ
    assert execute(
        deployed,
        "SELECT u.name, u.active, t.name FROM users u JOIN teams t"
        " ON t.id = u.team_id ORDER BY u.name",
    ) == [("Ada", False, "staff"), ("Bob", True, "ops")]

    # (ii, iii) A new database: the project's suite builds it from empty,
    # checks the models against it, and walks every revision with rows.
    if server:
        environment.setenv("TEST_DATABASE_URL", make_database(engine))
    suite = run_in_process(pytester, project, *NO_CACHE)
    assert suite.ret == 0, suite.stdout.str()
    suite.assert_outcomes(passed=len(MIGRATION_TESTS))
    assert "Migration walk: 2 of 2 revisions" in suite.stdout.str()


def refused(project: MiniProject, app: Flask, *args: str) -> str:
    """Run `flask db-baseline` expecting a refusal; its message. Nothing written."""
    before = files(project)
    result = project.flask(app, "db-baseline", *args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert files(project) == before
    return " ".join(result.output.split())


@pytest.fixture
def project(make_mini_project: Callable[..., MiniProject]) -> MiniProject:
    """A project with the four revisions; its app's database is a SQLite file."""
    return with_history(make_mini_project)


def test_refuses_when_the_database_has_not_reached_the_revision(
    project: MiniProject,
) -> None:
    execute(
        project.database_url,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)",
        f"INSERT INTO alembic_version VALUES ('{REVISION_2}')",
    )
    message = refused(project, project.app(), REVISION_3, "--drop-data-steps")
    assert f"is at {REVISION_2}, before {REVISION_3}" in message
    assert f"flask db upgrade {REVISION_3}" in message


@pytest.mark.parametrize(
    ("args", "url", "expected"),
    [
        (  # the app's database cannot be reached
            ["--drop-data-steps"],
            "postgresql://app:s3cret@127.0.0.1:1/app",
            ["Cannot connect to database 'app'", "--skip-database-check"],
        ),
        (  # the scratch URL names a driver that is not installed
            ["--scratch-url", "mysql+mysqldb://app:s3cret@127.0.0.1/scratch"],
            None,
            [
                "--scratch-url 'mysql+mysqldb://app:***@127.0.0.1/scratch'",
                "driver 'mysqldb', which is not installed",
            ],
        ),
    ],
    ids=["unreachable-database", "scratch-url-driver"],
)
def test_refuses_a_database_it_cannot_use_without_printing_its_password(
    project: MiniProject,
    args: list[str],
    url: str | None,
    expected: list[str],
) -> None:
    app = project.app(SQLALCHEMY_DATABASE_URI=url or project.database_url)
    message = refused(project, app, REVISION_3, *args)
    for words in expected:
        assert words in message
    assert "s3cret" not in message


def test_refuses_a_revision_that_a_branch_goes_around(project: MiniProject) -> None:
    for name, text in revisions.BRANCHES.items():
        (project.versions_dir / name).write_text(text)
    message = refused(
        project,
        project.app(),
        REVISION_3,
        "--drop-data-steps",
        "--skip-database-check",
    )
    assert f"{REVISION_3} is not a cut point of the history" in message
    assert revisions.FORK in message


def test_refuses_revisions_that_change_data_without_the_flag(
    project: MiniProject,
) -> None:
    message = refused(project, project.app(), REVISION_3, "--skip-database-check")
    assert f"{REVISION_2}_add_teams.py (execute())" in message
    assert "--drop-data-steps" in message
