"""The review's rules (flask_safe_migrations.rules), in-process on a
MiniProject: each finding is flagged on the terminal and in the revision with
its safe form when `flask db migrate` writes it, the migration tests (run by
pytester, as a project runs them) refuse it until it is written the safe way
or acknowledged, and the safe forms, as the review writes them, run with rows
on SQLite, PostgreSQL and MariaDB (upgrade, check, downgrade, the migration
tests)."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.operations import ops
from flask import Flask
from flask_safe_migrations import rules
from sqlalchemy.sql.naming import conv

from ..servers import Server, engine
from .conftest import isolated
from .generated_suite import (
    INITIAL_REVISION,
    NAME,
    USER,
    USER_CLASS,
    add_initial_revision,
    initial_revision,
    migration_tests,
    project_in,
    terminal,
)
from .miniproject import MiniProject

pytest_plugins = ["pytester"]

TEAM = """
class Team(Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(100))
"""
# Expand: a new table (exempt), and on the existing users table an index, a
# foreign key and a unique constraint.
EXPAND_FIELDS = (
    "    name: Mapped[str] = mapped_column(sa.String(100), index=True)\n"
    '    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("teams.id"))\n'
    "    nickname: Mapped[str | None] = mapped_column(sa.String(50), unique=True)\n"
    "    score: Mapped[str | None] = mapped_column(sa.String(10))\n"
)
# Contract: drop the index, make nickname NOT NULL, turn score into a number.
CONTRACT_FIELDS = (
    NAME
    + EXPAND_FIELDS.splitlines(keepends=True)[1]
    + "    nickname: Mapped[str] = mapped_column(sa.String(50), unique=True)\n"
    "    score: Mapped[int | None] = mapped_column()\n"
)
MODELS = "\nfrom datetime import datetime\n" + TEAM
EXPAND_MODELS = MODELS + USER_CLASS.replace(NAME, EXPAND_FIELDS)
CONTRACT_MODELS = MODELS + USER_CLASS.replace(NAME, CONTRACT_FIELDS)
CHECK_DOWNGRADE = """\
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_users_score_positive"), type_="check")
"""

# The data change a user writes by hand (migrations/README): SQL that all
# three engines accept, here built by SQLAlchemy (|| or CONCAT).
BACKFILL = """\
def upgrade() -> None:
    users = sa.table("users", sa.column("id"), sa.column("nickname"))
    op.execute(
        users.update()
        .where(users.c.nickname.is_(None))
        .values(nickname="nick" + sa.cast(users.c.id, sa.String(50)))
    )"""


RUFF_SETTINGS = """
[tool.ruff.lint.per-file-ignores]
"migrations/versions/*" = ["E501", "F401"]
"""
NUMERIC_SCORES = """\
from typing import Any

import sqlalchemy as sa


def sample_row(table: sa.Table, n: int) -> dict[str, Any] | None:
    score = table.c.get("score")
    if table.name == "users" and isinstance(getattr(score, "type", None), sa.String):
        return {"score": str(n)}
    return None
"""


def apply_safe_forms(text: str) -> str:
    """What a user does with each finding that has a safe form: delete the
    flagged operation and its comment, and write the safe form at the end of
    upgrade(), after the batch blocks."""
    lines = text.splitlines()
    upgrade_end = lines.index("def downgrade() -> None:")
    out: list[str] = []
    moved: list[str] = []
    remove_statement = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if i < upgrade_end and re.match(r"\s*# [A-Z ]+: .*\.$", line):
            end = next(j for j in range(i, len(lines)) if "Intended as" in lines[j])
            block = lines[i:end]
            if any("# Safe form" in b for b in block):
                start = next(n for n, b in enumerate(block) if "# Safe form" in b)
                moved += [re.sub(r"^\s*#     ", "", b) for b in block[start + 1 :]]
                remove_statement = True
                i = end + 1
                continue
        if remove_statement and not line.lstrip().startswith("#"):
            depth = 0
            while True:  # the flagged statement, to its closing parenthesis
                depth += lines[i].count("(") - lines[i].count(")")
                i += 1
                if depth == 0:
                    break
            remove_statement = False
            continue
        if line.strip() == "# ### end Alembic commands ###" and i < upgrade_end:
            out += [f"    {m}" for m in moved]
        out.append(line)
        i += 1
    # A batch block left with comments only needs a statement.
    result: list[str] = []
    for n, line in enumerate(out):
        result.append(line)
        if line.lstrip().startswith("with op.batch_alter_table"):
            indent = len(line) - len(line.lstrip())
            body = []
            for later in out[n + 1 :]:
                if later.strip() and len(later) - len(later.lstrip()) <= indent:
                    break
                body.append(later)
            if all(not b.strip() or b.lstrip().startswith("#") for b in body):
                result.append(" " * (indent + 4) + "pass")
    return "\n".join(result) + "\n"


def acknowledge(revision: Path, *texts: str) -> None:
    text = revision.read_text()
    for finding in texts:
        line = f'    # "{finding}",\n'
        assert line in text, (finding, text)
        text = text.replace(line, f'    "{finding}",\n')
    revision.write_text(text)


def check_fix() -> str:
    """A CHECK constraint is never autogenerated: the user adds it by hand, in
    the safe form the review gives for a PostgreSQL project."""
    name = conv("ck_users_score_positive")
    op = ops.CreateCheckConstraintOp(name, "users", "score >= 0")
    (finding,) = rules.findings(op, rules.Where(production_engine="postgresql"))
    return finding.fix()


def files(project: MiniProject) -> dict[str, str]:
    return {path.name: path.read_text() for path in project.revisions()}


@dataclass
class Flow:
    expand_output: str
    expand_script: str
    expand_files: dict[str, str]  # the history, with the expand as written
    contract_output: str
    contract_script: str
    contract_files: dict[str, str]
    safe_files: dict[str, str]  # with the safe forms, and acknowledged


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    """A PostgreSQL project, developed on SQLite: an expand and a contract
    revision autogenerated, then rewritten in the safe forms the review gave
    (and the rest acknowledged), each upgraded on the development database."""
    root = tmp_path_factory.mktemp("flow")
    with isolated(), MiniProject.write(root, models=USER).opened() as project:
        add_initial_revision(project)
        # As in a rendered project: ruff's post-write hook keeps the imports
        # of an empty revision, which the user fills in.
        with (root / "pyproject.toml").open("a") as pyproject:
            pyproject.write(RUFF_SETTINGS)

        def migrate(models: str, message: str) -> tuple[str, Path, Flask]:
            project.set_models(models)
            app = project.app(SQLALCHEMY_DATABASE_URI=project.development_url)
            project.upgrade(app)
            with terminal() as output:
                revision = project.migrate(app, message)
            assert revision is not None
            return output.getvalue(), revision, app

        expand_output, expand, app = migrate(EXPAND_MODELS, "expand")
        expand_script = expand.read_text()
        expand_files = files(project)
        expand.write_text(apply_safe_forms(expand_script))
        project.upgrade(app)
        # Before nickname becomes NOT NULL, the rows the expand left NULL get
        # one: without this revision the migration tests' rows make the
        # contract fail. (`flask db revision -m ...`)
        with app.app_context():
            config = project.alembic_config(app)
            backfill = Path(command.revision(config, "backfill nicknames").path)
        text = backfill.read_text().replace(
            "def upgrade() -> None:\n    pass", BACKFILL, 1
        )
        backfill.write_text(text)
        project.upgrade(app)

        contract_output, contract, app = migrate(CONTRACT_MODELS, "contract")
        contract_script = contract.read_text()
        contract_files = files(project)
        text = apply_safe_forms(contract_script).replace(
            "    # ### end Alembic commands ###\n",
            "".join(f"    {line}\n" for line in check_fix().splitlines())
            + "    # ### end Alembic commands ###\n",
            1,
        )
        contract.write_text(
            text.replace(
                "def downgrade() -> None:\n",
                f"def downgrade() -> None:\n{CHECK_DOWNGRADE}",
            )
        )
        # What has no safe form in code: accepted, as a reviewer would.
        acknowledge(
            contract,
            "change type of users.score from VARCHAR(length=10) to Integer()",
            "change type of users.score to Integer() rewrites the table",
        )
        project.upgrade(app)
        return Flow(
            expand_output,
            expand_script,
            expand_files,
            contract_output,
            contract_script,
            contract_files,
            files(project),
        )


LOCK_FINDINGS = {
    "expand": [
        (
            "create index ix_users_name on users without CONCURRENTLY",
            "op.create_index(op.f('ix_users_name'), 'users', ['name'], unique=False,"
            " postgresql_concurrently=True)",
        ),
        (
            "add unique constraint uq_users_nickname on users",
            "op.execute('ALTER TABLE users ADD CONSTRAINT uq_users_nickname UNIQUE"
            " USING INDEX uq_users_nickname')",
        ),
        (
            "add foreign key fk_users_team_id_teams on users without NOT VALID",
            "op.execute('ALTER TABLE users VALIDATE CONSTRAINT"
            " fk_users_team_id_teams')",
        ),
    ],
    "contract": [
        (
            "set NOT NULL on users.nickname",
            "op.execute('ALTER TABLE users ADD CONSTRAINT users_nickname_not_null"
            " CHECK (nickname IS NOT NULL) NOT VALID')",
        ),
        (
            "drop index ix_users_name on users without CONCURRENTLY",
            "op.drop_index(op.f('ix_users_name'), table_name='users',"
            " postgresql_concurrently=True)",
        ),
        (
            "change type of users.score to Integer() without postgresql_using",
            "postgresql_using='score::INTEGER')",
        ),
        ("change type of users.score to Integer() rewrites the table", "On a big"),
    ],
}


@pytest.mark.parametrize("step", ["expand", "contract"])
def test_each_finding_is_flagged_with_its_safe_form(flow: Flow, step: str) -> None:
    output = getattr(flow, f"{step}_output")
    script = getattr(flow, f"{step}_script")
    for finding, safe_form in LOCK_FINDINGS[step]:
        assert f": {finding}\n" in output, output
        assert f": {finding}.\n" in script, script  # its comment
        assert safe_form in output, output
        assert safe_form in script, script
        assert f'    # "{finding}",\n' in script, script
    # The new table is exempt: nothing about teams.
    assert "on teams" not in output


@pytest.mark.parametrize("step", ["expand", "contract"])
def test_the_migration_tests_refuse_each_unacknowledged_finding(
    pytester: pytest.Pytester, flow: Flow, step: str
) -> None:
    models = EXPAND_MODELS if step == "expand" else CONTRACT_MODELS
    with project_in(pytester, models, getattr(flow, f"{step}_files")) as project:
        returncode, report = migration_tests(pytester, project, "acknowledged")
    assert returncode != 0
    assert "1 failed" in report, report
    for finding, _ in LOCK_FINDINGS[step]:
        assert f"_{step}.py: {finding!r}" in report, report


def test_the_safe_forms_pass_the_migration_tests_on_sqlite(
    pytester: pytest.Pytester, flow: Flow
) -> None:
    """Recognised as safe, and run up and down on SQLite, with rows, by the
    migration tests. The sample rows' "sample ..." scores do not cast to a
    number; production's do (the server test's "7"): the project says so, as
    migrations/README shows."""
    with project_in(
        pytester, CONTRACT_MODELS, flow.safe_files, migration_rows=NUMERIC_SCORES
    ) as project:
        returncode, report = migration_tests(pytester, project)
    assert returncode == 0, report
    assert " failed" not in report, report


def test_the_safe_forms_run_with_rows_on_the_server(
    server: Server,
    database: str,
    pytester: pytest.Pytester,
    environment: pytest.MonkeyPatch,
    flow: Flow,
) -> None:
    """Upgrade with 1,000 rows, check, downgrade, then the migration tests, on
    the server: the same revisions, written on SQLite."""
    bind = engine(database)
    with project_in(
        pytester,
        CONTRACT_MODELS,
        flow.safe_files,
        migration_rows=NUMERIC_SCORES,
        database_url=database,
    ) as project:
        app = project.app()
        project.upgrade(app, INITIAL_REVISION)
        with bind.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO users (email, name) VALUES (:email, :name)"),
                [{"email": f"u{n}@example.com", "name": f"N{n}"} for n in range(1000)],
            )
        project.upgrade(app, "+1")  # expand
        with bind.begin() as connection:
            connection.execute(sa.text("INSERT INTO teams (id, title) VALUES (1, 'T')"))
            connection.execute(
                sa.text("UPDATE users SET nickname = CONCAT('nick', id), team_id = 1")
            )
            connection.execute(sa.text("UPDATE users SET score = '7'"))

        project.upgrade(app)  # contract

        with bind.connect() as connection:
            query = sa.text("SELECT nickname, score FROM users")
            rows = connection.execute(query).all()
            assert len(rows) == 1000
            assert {score for _, score in rows} == {7}
            for statement in (
                "UPDATE users SET nickname = NULL WHERE id = 1",  # NOT NULL
                "UPDATE users SET nickname = 'nick2' WHERE id = 1",  # unique
                "UPDATE users SET team_id = 2 WHERE id = 1",  # foreign key
                "UPDATE users SET score = -1 WHERE id = 1",  # CHECK
            ):
                # (MariaDB reports a failed CHECK as an OperationalError.)
                with pytest.raises(sa.exc.DBAPIError, match=r"(?i)constraint|null|dup"):
                    connection.execute(sa.text(statement))
                connection.rollback()
            indexes = {
                index["name"] for index in sa.inspect(connection).get_indexes("users")
            }
            assert "ix_users_name" not in indexes
            if server.engine == "postgresql":
                invalid = connection.execute(
                    sa.text("SELECT conname FROM pg_constraint WHERE NOT convalidated")
                ).all()
                assert invalid == []
        project.check(app)
        project.downgrade(app, INITIAL_REVISION)
        with bind.connect() as connection:
            count = connection.execute(sa.text("SELECT COUNT(*) FROM users")).scalar()
            assert count == 1000
        bind.dispose()

        environment.setenv("TEST_DATABASE_URL", database)
        returncode, report = migration_tests(pytester, project)
    assert returncode == 0, report
    assert " failed" not in report, report


NOT_NULL_AND_ENUM = USER.replace(
    NAME,
    NAME
    + "    age: Mapped[int] = mapped_column()\n"
    + "    mood: Mapped[str | None] = mapped_column(sa.Enum('a', name='mood'))\n",
)


def test_not_null_without_default_is_flagged_and_refused_but_not_a_native_enum(
    pytester: pytest.Pytester,
    make_database: Callable[[str], str],
) -> None:
    """Flagged at migrate and by the migration tests; and a NOT NULL column
    without a default, added to a table with rows, is refused with the same
    message by `flask db upgrade` on SQLite, PostgreSQL and MariaDB (which
    would fill in 0)."""
    with project_in(pytester) as project:
        project.set_models(NOT_NULL_AND_ENUM)
        development = project.app(SQLALCHEMY_DATABASE_URI=project.development_url)
        project.upgrade(development)
        with terminal() as terminal_output:
            revision = project.migrate(development, "age and mood")
        output = terminal_output.getvalue()
        assert revision is not None

        not_null = "add NOT NULL column users.age without a server default"
        enum = "native ENUM mood for users.mood"
        assert f"  - FAILS WITH ROWS: {not_null}\n" in output
        # The fix names the library's batched fill.
        assert "fill it in batches with flask_safe_migrations.backfill()" in " ".join(
            output.split()
        )
        # A native ENUM works on every engine now (enums.py): nothing to flag.
        assert enum not in output
        script = revision.read_text()
        assert f'    # "{not_null}",\n' in script
        assert enum not in script
        _, report = migration_tests(pytester, project, "acknowledged")
        assert f"age_and_mood.py: {not_null!r} (FAILS WITH ROWS)" in report
        assert enum not in report

        refusal = (
            "Cannot add the NOT NULL column users.age: users holds rows, and the"
            " column has no server default to give them."
        )
        urls = {
            "sqlite": project.database_url,
            "postgresql": make_database("postgresql"),
            "mysql": make_database("mysql"),
        }
        for name, url in urls.items():
            app = project.app(SQLALCHEMY_DATABASE_URI=url)
            project.upgrade(app, INITIAL_REVISION)
            with app.app_context(), app.extensions["sqlalchemy"].engine.begin() as c:
                c.execute(
                    sa.text("INSERT INTO users (email, name) VALUES ('a@b.c', 'A')")
                )
            upgrade = project.flask(app, "db", "upgrade")
            assert upgrade.exit_code != 0, name
            assert refusal in " ".join(upgrade.output.split()), (name, upgrade.output)
            assert "fill it with flask_safe_migrations.backfill() and make it" in (
                " ".join(upgrade.output.split())
            ), upgrade.output
            assert "Traceback" not in upgrade.output, upgrade.output
            with app.app_context(), app.extensions["sqlalchemy"].engine.connect() as c:
                columns = {col["name"] for col in sa.inspect(c).get_columns("users")}
                assert "age" not in columns, name


HAND_WRITTEN = f'''\
"""by hand"""

import sqlalchemy as sa
from alembic import op

revision = "0aa0aa0aa0aa"
down_revision = "{INITIAL_REVISION}"
branch_labels = None
depends_on = None
ACKNOWLEDGED = ["rename table users to members"]


def upgrade() -> None:
    op.create_table("notes", sa.Column("id", sa.Integer(), primary_key=True))
    op.create_index("ix_notes_id", "notes", ["id"])
    if op.get_context().dialect.name == "postgresql":
        op.add_column(
            "users",
            sa.Column("token", sa.Uuid(), server_default=sa.text("gen_random_uuid()")),
        )
        op.create_check_constraint("name_set", "users", "name <> ''")
    else:
        with op.batch_alter_table("users") as batch_op:
            batch_op.create_check_constraint("email_set", "email <> ''")
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("name", new_column_name="full_name")
    op.rename_table("users", "members")


def downgrade() -> None:
    raise NotImplementedError
'''


@pytest.mark.parametrize(
    ("production_engine", "expected"),
    [
        (
            "postgresql",
            [
                "add column users.token with the volatile default gen_random_uuid()",
                "add CHECK name_set on users without NOT VALID",
                "rename column users.name to users.full_name",
            ],
        ),
        # The lock rules are for PostgreSQL projects only.
        ("mysql", ["rename column users.name to users.full_name"]),
    ],
)
def test_hand_written_revisions_are_read_with_their_branches_and_exemptions(
    pytester: pytest.Pytester,
    production_engine: str,
    expected: list[str],
) -> None:
    name = "2026_11_22_000000-0aa0aa0aa0aa_hand.py"
    with project_in(
        pytester,
        revisions={**initial_revision(), name: HAND_WRITTEN},
        production_engine=production_engine,
    ) as project:
        _, report = migration_tests(pytester, project, "acknowledged")

    # (pytest prints the message twice: as text, and in the list's repr.)
    found = re.findall(r"0aa0aa0aa0aa_hand\.py: '([^']*)'", report)
    assert list(dict.fromkeys(found)) == expected, report
