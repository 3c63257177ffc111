<%!
    import json
%><%
    data_loss = config.attributes.get("data_loss", [])
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
# - Enum values, CHECK constraints and data changes are not detected.
# - Data loss: the migration tests fail until every destructive operation in
#   upgrade() is listed in ACKNOWLEDGED_DATA_LOSS at the top of the file.
# - downgrade() must undo upgrade(); run `flask db downgrade` once to try it.

% if data_loss:
# THIS REVISION DESTROYS DATA (see the DATA LOSS comments in upgrade()).
# The migration tests fail until each intended loss is acknowledged here:
# check it, then uncomment its line.
ACKNOWLEDGED_DATA_LOSS: list[str] = [
% for loss in data_loss:
    # ${json.dumps(loss)},
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
