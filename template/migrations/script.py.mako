<%!
    import json
%><%
    findings = config.attributes.get("review_findings", [])
%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

# Review before committing (migrations/README explains each point):
# - A rename is written as drop + add, which loses the data: use
#   batch_op.alter_column(..., new_column_name=...) or op.rename_table(...).
# - A new NOT NULL column on a table with rows needs a server_default.
# - CHECK constraints and data changes are not detected; native ENUM values
#   only against PostgreSQL.
# - The review's findings (data loss, changes that fail once a table has rows,
#   locks that block traffic, renames that break the running release): the
#   migration tests fail until each is written the safe way its comment shows
#   or listed in ACKNOWLEDGED at the top of the file.
# - downgrade() must undo upgrade(); run `flask db downgrade` once to try it.

% if findings:
# THE REVIEW FLAGGED THIS REVISION (see the comments in upgrade() and
# downgrade()). The migration tests fail until each finding is written the
# safe way or acknowledged here: check it, then uncomment its line.
ACKNOWLEDGED: list[str] = [
% for note, text in findings:
    # ${note}:
    # ${json.dumps(text)},
% endfor
]

% endif
revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
% for bind in config.attributes.get("binds", []):


def upgrade_${bind}() -> None:
    ${context.get(bind + "_upgrades") or "pass"}


def downgrade_${bind}() -> None:
    ${context.get(bind + "_downgrades") or "pass"}
% endfor
