"""The history the baseline tests squash: after the template's initial
revision (users), three written by hand as `flask db revision` would start
them. The baseline goes at the third (REVISION_3); the fourth comes after it."""

from ..library.generated_suite import INITIAL_FILE, INITIAL_REVISION

REVISION_2 = "b2c0ffee0002"
REVISION_3 = "b3c0ffee0003"
REVISION_4 = "b4c0ffee0004"

HEADER = '''\
"""{message}"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = {down}
branch_labels = None
depends_on = None
'''

# A table with a unique constraint, and a row every database needs: a data
# step, which a baseline rebuilt from the schema cannot carry.
TEAMS = """

def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )
    op.execute(sa.text("INSERT INTO teams (name) VALUES ('staff')"))


def downgrade() -> None:
    op.drop_table("teams")
"""

# A column with a server default added to a table with rows, a foreign key
# and an index.
USERS_IN_TEAMS = """

def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_users_team_id_teams"), "teams", ["team_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_users_name"), ["name"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_users_team_id_teams"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_users_name"))
        batch_op.drop_column("team_id")
        batch_op.drop_column("active")
"""

NOTES = """

def upgrade() -> None:
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )


def downgrade() -> None:
    op.drop_table("notes")
"""


def revision(message: str, revision: str, down: object, body: str) -> str:
    down_text = repr(down).replace("'", '"')
    return HEADER.format(message=message, revision=revision, down=down_text) + body


# File name: its content.
HISTORY = {
    f"2026_11_22_000000-{REVISION_2}_add_teams.py": revision(
        "add teams", REVISION_2, INITIAL_REVISION, TEAMS
    ),
    f"2026_11_23_000000-{REVISION_3}_users_in_teams.py": revision(
        "users in teams", REVISION_3, REVISION_2, USERS_IN_TEAMS
    ),
    f"2026_11_24_000000-{REVISION_4}_add_notes.py": revision(
        "add notes", REVISION_4, REVISION_3, NOTES
    ),
}

# A branch that forks before REVISION_3 and merges after it: REVISION_3 is
# then no cut point.
FORK = "c1f0e4000001"
MERGE = "c2e4e6000002"
BRANCHES = {
    f"2026_11_25_000000-{FORK}_fork.py": revision(
        "fork",
        FORK,
        INITIAL_REVISION,
        "\n\ndef upgrade() -> None:\n    pass\n\n\n"
        "def downgrade() -> None:\n    pass\n",
    ),
    f"2026_11_26_000000-{MERGE}_merge.py": revision(
        "merge",
        MERGE,
        (REVISION_4, FORK),
        "\n\ndef upgrade() -> None:\n    pass\n\n\n"
        "def downgrade() -> None:\n    pass\n",
    ),
}

# The files the baseline at REVISION_3 replaces, and the one after it.
SQUASHED = [
    INITIAL_FILE,
    *[name for name in HISTORY if REVISION_4 not in name],
]
LATER = next(f"versions/{name}" for name in HISTORY if REVISION_4 in name)
