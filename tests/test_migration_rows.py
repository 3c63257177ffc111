"""The generated migration tests carry data: they put rows in every table
before each step of the up/down walk, made from the reflected schema, so a
migration that only fails on a table with rows fails there, on every engine.

The walk runs on a MiniProject with pytester (library/generated_suite.py),
in-process, as the generated tests/test_migrations.py runs it."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from .library.generated_suite import NO_CACHE, WALK, plugin_project, run_in_process
from .library.miniproject import MiniProject

pytest_plugins = ["pytester"]

# Every kind of column and constraint the rows must satisfy, on every engine:
# types, lengths, NOT NULL, unique (single and composite), a composite primary
# key of two foreign keys, a self-reference, a cycle of foreign keys, ENUMs
# (native and as a CHECK), a numeric CHECK, JSON with a JSONB variant.
RICH_SCHEMA = '''\
"""a schema with every kind of column"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "a11c01f00001"
down_revision = "3f1a9c2b7d40"
branch_labels = None
depends_on = None

MOOD = sa.Enum("calm", "busy", name="mood")
ROLE = sa.Enum(
    "lead", "dev", name="member_role", native_enum=False, create_constraint=True
)
SETTINGS = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(12), nullable=False, unique=True),
        sa.Column("captain_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("founded", sa.Date(), nullable=False),
        sa.Column("mood", MOOD, nullable=False),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "team_id",
            sa.Integer(),
            sa.ForeignKey("teams.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("mentor_id", sa.Integer(), sa.ForeignKey("members.id")),
        sa.Column("handle", sa.String(3), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("starts", sa.Time(), nullable=False),
        sa.Column("salary", sa.Numeric(5, 2), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("bio", sa.Text(), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("settings", SETTINGS, nullable=False),
        sa.Column("avatar", sa.LargeBinary(), nullable=False),
        sa.Column("token", sa.Uuid(), nullable=False, unique=True),
        sa.Column("note", sa.String(20), server_default="none", nullable=False),
        sa.UniqueConstraint("team_id", "handle", name="uq_members_team_id_handle"),
        sa.CheckConstraint("level >= 0", name="ck_members_level"),
    )
    op.create_table(
        "projects",
        sa.Column("code", sa.String(8), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
    )
    op.create_table(
        "assignments",
        sa.Column(
            "member_id", sa.Integer(), sa.ForeignKey("members.id"), primary_key=True
        ),
        sa.Column(
            "project_code",
            sa.String(8),
            sa.ForeignKey("projects.code"),
            primary_key=True,
        ),
        sa.Column("hours", sa.BigInteger(), nullable=False),
    )
    # The cycle: teams.captain_id -> members, members.team_id -> teams.
    with op.batch_alter_table("teams") as batch_op:
        batch_op.create_foreign_key(
            "fk_teams_captain_id_members", "members", ["captain_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch_op:
        batch_op.drop_constraint("fk_teams_captain_id_members", type_="foreignkey")
    op.drop_table("assignments")
    op.drop_table("projects")
    op.drop_table("members")
    op.drop_table("teams")
    MOOD.drop(op.get_bind(), checkfirst=True)
'''

# Fails the upgrade when some tables hold rows and others none: what proves
# that the walk filled every table (the session's set-up upgrades empty ones).
EVERY_TABLE_HOLDS_ROWS = '''\
"""every table holds rows"""

import sqlalchemy as sa
from alembic import op

revision = "a11c01f00002"
down_revision = "a11c01f00001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    counts = {
        table: bind.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
        for table in sa.inspect(bind).get_table_names()
        if table != "alembic_version"
    }
    if any(counts.values()) and not all(counts.values()):
        raise RuntimeError(f"some tables hold no rows: {counts}")
    bind.execute(sa.text("DELETE FROM assignments"))


def downgrade() -> None:
    pass
'''

NOT_NULL_WITHOUT_DEFAULT = '''\
"""add users.nickname"""

import sqlalchemy as sa
from alembic import op

revision = "b0b0b0b0b0b0"
down_revision = "3f1a9c2b7d40"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("nickname", sa.String(50), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("nickname")
'''

# A CHECK the made-up rows cannot guess, and the user's hook that fills it.
PRODUCT_CODES = '''\
"""products with coded names"""

import sqlalchemy as sa
from alembic import op

revision = "c0dec0dec0de"
down_revision = "3f1a9c2b7d40"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(20), nullable=False),
        sa.CheckConstraint("code LIKE 'SKU-%'", name="ck_products_sku"),
    )


def downgrade() -> None:
    op.drop_table("products")
'''

SAMPLE_ROW_HOOK = '''\
"""Realistic values for the rows the migration tests put in every table."""

from typing import Any

import sqlalchemy as sa


def sample_row(table: sa.Table, n: int) -> dict[str, Any] | None:
    if table.name == "products":
        return {"code": f"SKU-{n:05}"}
    return None
'''


class Walk:
    """The migration walk alone (the revisions here have no models), on a
    fresh test database each time (no cache: every revision)."""

    def __init__(self, project: MiniProject, pytester: pytest.Pytester) -> None:
        self.project = project
        self.pytester = pytester

    def add_revision(self, name: str, source: str) -> Path:
        path = self.project.versions_dir / f"2026_11_22_000000-{name}.py"
        path.write_text(source)
        return path

    def __call__(self) -> tuple[int, str]:
        result = run_in_process(
            self.pytester,
            self.project,
            *NO_CACHE,
            "tests/test_migrations.py",
            "-k",
            WALK,
        )
        return int(result.ret), "\n".join(result.outlines + result.errlines)


@pytest.fixture
def walk(
    engine_url: str | None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Walk]:
    with plugin_project(pytester, monkeypatch, test_database_url=engine_url) as p:
        yield Walk(p, pytester)


def test_walk_puts_rows_in_every_table_and_catches_lost_ones(walk: Walk) -> None:
    walk.add_revision("a11c01f00001_rich", RICH_SCHEMA)
    probe = walk.add_revision("a11c01f00002_probe", EVERY_TABLE_HOLDS_ROWS)

    returncode, report = walk()

    assert returncode != 0, report
    assert (
        "Upgrading to a11c01f00002 (2026_11_22_000000-a11c01f00002_probe.py) lost"
        " rows from assignments" in report
    ), report
    assert "hold no rows" not in report

    probe.write_text(
        probe.read_text().replace(
            "branch_labels = None",
            'ACKNOWLEDGED = ["delete rows from assignments"]\nbranch_labels = None',
        )
    )
    returncode, report = walk()
    assert returncode == 0, report


def test_not_null_column_without_default_fails_the_generated_suite(
    walk: Walk,
) -> None:
    """Passes on empty tables; fails with the rows the walk puts in. (MariaDB
    would fill '' silently: flask_safe_migrations/guards.py refuses it there
    too.)"""
    revision = walk.add_revision("b0b0b0b0b0b0_nick", NOT_NULL_WITHOUT_DEFAULT)

    returncode, report = walk()

    assert returncode != 0, report
    assert (
        "Upgrading to b0b0b0b0b0b0 (2026_11_22_000000-b0b0b0b0b0b0_nick.py) fails"
        " on a database whose tables hold rows" in report
    ), report
    assert "server_default" in report
    assert "Traceback" not in report

    revision.write_text(
        revision.read_text().replace(
            "nullable=False)", 'nullable=False, server_default="-")', 1
        )
    )
    returncode, report = walk()
    assert returncode == 0, report


@pytest.mark.parametrize("engine_url", [None], ids=["sqlite"])
def test_user_hook_gives_the_rows_realistic_values(walk: Walk) -> None:
    walk.add_revision("c0dec0dec0de_products", PRODUCT_CODES)

    returncode, report = walk()

    assert returncode != 0
    assert "could not add a row to the table 'products'" in report, report
    assert "sample_row() function in tests/migration_rows.py" in report

    (walk.pytester.path / "tests" / "migration_rows.py").write_text(SAMPLE_ROW_HOOK)
    returncode, report = walk()
    assert returncode == 0, report
