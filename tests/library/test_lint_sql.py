"""squawk in PostgreSQL projects, in-process on a MiniProject (with the
template's .squawk.toml): `python -m flask_safe_migrations.lint_sql BASE`
lints the SQL of the revisions a change adds (as the generated CI does, and
as migrations/README tells the user to do before pushing), with the rules
that matter for availability.

Each revision's SQL comes from `flask db upgrade --sql`, run in-process;
squawk itself comes from the rendered projects' environment (squawk-cli is
in their dev group). That a PostgreSQL project gets squawk and .squawk.toml
is tests/test_squawk.py's; the generated CI's own lint step runs in
tests/test_pipelines.py."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask_safe_migrations import lint_sql

from ..helpers import ROOT
from .generated_suite import INITIAL_REVISION, add_initial_revision
from .miniproject import MiniProject

SQUAWK_TOML = (
    ROOT / "template" / "{% if database == 'postgresql' %}.squawk.toml{% endif %}.jinja"
)

BLOCKING_INDEX = f'''\
"""index users by name"""

from alembic import op

revision = "1dx000000001"
down_revision = "{INITIAL_REVISION}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_name", "users", ["name"])


def downgrade() -> None:
    op.drop_index("ix_users_name", table_name="users")
'''

# The form migrations/README teaches: the index built without blocking writes.
CONCURRENT_INDEX = BLOCKING_INDEX.replace(
    '    op.create_index("ix_users_name", "users", ["name"])\n',
    "    with op.get_context().autocommit_block():\n"
    '        op.create_index("ix_users_name", "users", ["name"],'
    " postgresql_concurrently=True)\n",
)

DROP_COLUMN = '''\
"""drop users.name"""

import sqlalchemy as sa
from alembic import op

revision = "d40b00000002"
down_revision = "1dx000000001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_column("users", "name")


def downgrade() -> None:
    op.add_column("users", sa.Column("name", sa.String(100), nullable=True))
'''


def git(project: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=project,
        check=True,
        capture_output=True,
    )


def test_squawk_lints_the_sql_of_the_revisions_a_change_adds(
    make_mini_project: Callable[..., MiniProject],
    project_env: Path,
    environment: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    project = make_mini_project(production_engine="postgresql")
    add_initial_revision(project)
    (project.root / ".squawk.toml").write_text(SQUAWK_TOML.read_text())
    root = project.root
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "initial")
    git(root, "checkout", "--quiet", "-b", "feature")
    index = project.versions_dir / "2026_11_22_000001-1dx000000001_index_users.py"
    # From the project's root, as CI runs it, with squawk on PATH.
    environment.chdir(root)
    environment.setenv("PATH", f"{project_env / 'bin'}{os.pathsep}{os.environ['PATH']}")
    # Each revision's SQL is `flask db upgrade --sql DOWN:REVISION`, which
    # lint_sql runs as `python -m flask`: here the same command in-process
    # (MiniProject.flask), for the project's app on lint_sql's offline URL.
    # (That `python -m flask` finds a rendered project's app: the generated
    # CI's lint step, tests/test_pipelines.py.)
    real_run = subprocess.run

    def run(command: list[str], *args: Any, **kwargs: Any) -> Any:
        if command[:3] != [sys.executable, "-m", "flask"]:
            return real_run(command, *args, **kwargs)
        url = kwargs["env"]["DATABASE_URL"]
        result = project.flask(project.app(SQLALCHEMY_DATABASE_URI=url), *command[3:])
        return subprocess.CompletedProcess(
            command, result.exit_code, result.stdout, result.stderr
        )

    environment.setattr(subprocess, "run", run)

    def lint() -> tuple[int, str]:
        capfd.readouterr()
        returncode = lint_sql.main(["main"])
        return returncode, capfd.readouterr().out

    returncode, output = lint()
    assert returncode == 0
    assert "No revision added since main" in output

    index.write_text(BLOCKING_INDEX)  # not even committed yet
    returncode, output = lint()
    assert returncode != 0
    # Only the added revision, not the initial one, as PostgreSQL SQL.
    assert "squawk: 1 revision(s): 2026_11_22_000001-1dx000000001" in output
    assert "require-concurrent-index-creation" in output
    assert "CREATE INDEX ix_users_name ON users (name)" in output

    index.write_text(CONCURRENT_INDEX)
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "index")
    assert lint()[0] == 0

    # A change that breaks the release still running during a deploy fails,
    # until the revision says it is meant.
    drop = project.versions_dir / "2026_11_22_000002-d40b00000002_drop_name.py"
    drop.write_text(DROP_COLUMN)
    returncode, output = lint()
    assert returncode != 0
    assert "squawk: 2 revision(s)" in output
    assert "ban-drop-column" in output
    # The review's acknowledgement is squawk's too: one list, both checks.
    drop.write_text(
        DROP_COLUMN.replace(
            "depends_on = None\n",
            "depends_on = None\n\n"
            'ACKNOWLEDGED: list[str] = ["drop column users.name"]\n',
        )
    )
    assert lint()[0] == 0
    # A squawk rule the review has no rule for: SQUAWK_IGNORE, for this file.
    drop.write_text(
        DROP_COLUMN.replace(
            '    op.drop_column("users", "name")\n',
            '    op.execute("ALTER TABLE users DROP COLUMN name")\n',
        ).replace(
            "depends_on = None\n",
            'depends_on = None\n\nSQUAWK_IGNORE = ["ban-drop-column"]\n',
        )
    )
    assert lint()[0] == 0
