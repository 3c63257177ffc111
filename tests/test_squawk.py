"""squawk in PostgreSQL projects: the SQL of the revisions a change adds is
linted (as the generated CI does, and as migrations/README tells the user to
do before pushing), with the rules that matter for availability.

The generated CI's own lint step runs in tests/test_pipelines.py."""

import subprocess
from collections.abc import Callable
from pathlib import Path

from .helpers import run

BLOCKING_INDEX = '''\
"""index users by name"""

from alembic import op

revision = "1dx000000001"
down_revision = "3f1a9c2b7d40"
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
    fresh_project: Callable[..., Path], project_env: Path
) -> None:
    project = fresh_project()
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "initial")
    git(project, "checkout", "--quiet", "-b", "feature")
    versions = project / "migrations" / "versions"
    index = versions / "2026_11_22_000001-1dx000000001_index_users.py"

    def lint() -> subprocess.CompletedProcess[str]:
        return run(
            project,
            project_env,
            *("python", "-m", "my_flask_app.migration_tools.lint_sql", "main"),
            check=False,
        )

    nothing = lint()
    assert nothing.returncode == 0
    assert "No revision added since main" in nothing.stdout

    index.write_text(BLOCKING_INDEX)  # not even committed yet
    blocked = lint()
    assert blocked.returncode != 0
    # Only the added revision, not the initial one, as PostgreSQL SQL.
    assert "squawk: 1 revision(s): 2026_11_22_000001-1dx000000001" in blocked.stdout
    assert "require-concurrent-index-creation" in blocked.stdout
    assert "CREATE INDEX ix_users_name ON users (name)" in blocked.stdout

    index.write_text(CONCURRENT_INDEX)
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "index")
    assert lint().returncode == 0

    # A change that breaks the release still running during a deploy fails,
    # until the revision says it is meant.
    drop = versions / "2026_11_22_000002-d40b00000002_drop_name.py"
    drop.write_text(DROP_COLUMN)
    dropped = lint()
    assert dropped.returncode != 0
    assert "squawk: 2 revision(s)" in dropped.stdout
    assert "ban-drop-column" in dropped.stdout
    # The review's acknowledgement is squawk's too: one list, both checks.
    drop.write_text(
        DROP_COLUMN.replace(
            "depends_on = None\n",
            "depends_on = None\n\n"
            'ACKNOWLEDGED: list[str] = ["drop column users.name"]\n',
        )
    )
    assert lint().returncode == 0
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
    assert lint().returncode == 0


def test_squawk_is_a_postgresql_project_tool(
    render: Callable[[str], Path],
) -> None:
    for name, present in (("defaults", True), ("mysql", False), ("sqlite", False)):
        project = render(name)
        assert (project / ".squawk.toml").exists() is present
        assert ("squawk-cli" in (project / "pyproject.toml").read_text()) is present
        readme = (project / "migrations" / "README").read_text()
        assert ("lint_sql" in readme) is present
