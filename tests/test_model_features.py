"""Valid SQLAlchemy models that the template's autogenerate hooks must leave to
Alembic rather than crash on: a computed column, and a server default drawn
from a sequence. `flask db migrate`, `upgrade` and `check` run on the server,
with a row inserted before the check."""

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from .helpers import add_model, run
from .servers import engine

# A computed column on every server; on PostgreSQL also a sequence's
# next_value() as a server default (MariaDB's sequences are not in
# SQLAlchemy's MySQL dialect).
MODEL = '''"""People."""

from sqlalchemy import Computed, Integer{sequence_import}
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
{sequence}

class Person(Model):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    age: Mapped[int] = mapped_column(Integer)
    # Nullable: MariaDB refuses NOT NULL on a generated column.
    double_age: Mapped[int | None] = mapped_column(Integer, Computed("age * 2"))
{ticket}'''
SEQUENCE = {
    "sequence_import": ", Sequence",
    "sequence": '\nticket_seq = Sequence("ticket_seq")\n',
    "ticket": "    ticket: Mapped[int] = mapped_column(\n"
    "        Integer, server_default=ticket_seq.next_value()\n"
    "    )\n",
}
# Alembic does not autogenerate sequences: the user creates it, as its
# documentation says, before the table that uses it.
CREATE_SEQUENCE = (
    '    op.execute(sa.schema.CreateSequence(sa.Sequence("ticket_seq")))\n'
)


@pytest.mark.parametrize("engine_name", ["postgresql", "mysql"])
def test_computed_columns_and_sequence_defaults_migrate_and_check_clean(
    engine_name: str,
    fresh_project: Callable[..., Path],
    project_env: Path,
    make_database: Callable[[str], str],
) -> None:
    url = make_database(engine_name)
    project = fresh_project()
    postgresql = engine_name == "postgresql"
    parts = SEQUENCE if postgresql else dict.fromkeys(SEQUENCE, "")
    add_model(project, "person", "Person", MODEL.format(**parts))
    database = {"DATABASE_URL": url}
    run(project, project_env, "flask", "db", "upgrade", **database)
    versions = project / "migrations" / "versions"
    before = set(versions.glob("*.py"))

    # Crashed before: Alembic reads a reflected Computed's .arg before it
    # calls a compare_server_default hook; rendering read next_value().clauses.
    run(project, project_env, "flask", "db", "migrate", "-m", "people", **database)

    (revision,) = set(versions.glob("*.py")) - before
    script = revision.read_text()
    assert "sa.Computed(" in script
    if postgresql:
        assert "nextval('ticket_seq')" in script
        revision.write_text(
            script.replace(
                "def upgrade() -> None:\n",
                "def upgrade() -> None:\n" + CREATE_SEQUENCE,
                1,
            )
        )
    run(project, project_env, "flask", "db", "upgrade", **database)
    bind = engine(url)
    try:
        with bind.begin() as connection:
            connection.execute(sa.text("INSERT INTO people (age) VALUES (21)"))
            row = connection.execute(sa.text("SELECT * FROM people")).mappings().one()
        assert row["double_age"] == 42
        if postgresql:
            assert row["ticket"] == 1
    finally:
        bind.dispose()
    # Clean: the sequence default read back as nextval('ticket_seq'::regclass)
    # means the model's next_value(); the computed column is Alembic's to compare.
    check = run(project, project_env, "flask", "db", "check", **database)
    assert "No new upgrade operations detected" in check.stdout + check.stderr


# Alembic's batch rebuild on SQLite, on a table with a generated column: with
# rows, after an add_column that SQLite writes on the generated column's line.
SQLITE_REBUILD = """
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

import my_flask_app.migration_tools.sqlite  # the fixes, as env.py imports them

engine = sa.create_engine("sqlite://")
with engine.begin() as connection:
    people = sa.Table(
        "people",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("age", sa.Integer, nullable=False),
        sa.Column("double_age", sa.Integer, sa.Computed("coalesce(age, 1) * 2")),
    )
    people.create(connection)
    connection.execute(people.insert().values(age=3))
    op = Operations(MigrationContext.configure(connection))
    with op.batch_alter_table("people") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(20), server_default="x"))
    with op.batch_alter_table("people") as batch_op:
        batch_op.alter_column("age", nullable=True, existing_type=sa.Integer())
    print(connection.execute(sa.text("SELECT * FROM people")).all())
"""


def test_sqlite_batch_rebuild_keeps_generated_columns(
    render: Callable[[str], Path], project_env: Path
) -> None:
    result = run(render("defaults"), project_env, "python", "-c", SQLITE_REBUILD)
    assert result.stdout.strip() == "[(1, 3, 6, 'x')]"


# The review's rule for types an engine cannot create, from the project's own
# rules module: what it finds for each column added to users.
ENGINE_ONLY = """
import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.dialects import postgresql

from my_flask_app.migration_tools import rules

COLUMNS = {
    "tags": postgresql.ARRAY(sa.Integer()),
    "address": postgresql.INET(),
    "data": sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
    "nickname": sa.String(),
    "title": sa.String(50),
}
for name, type_ in COLUMNS.items():
    op = ops.AddColumnOp("users", sa.Column(name, type_))
    found = rules.findings(op, rules.Where())
    texts = [f.text for f in found if f.rule.name == "engine-only-type"]
    print(name, "|", "; ".join(texts))
"""


@pytest.mark.parametrize(
    ("project_name", "flagged"),
    [
        (
            "defaults",
            {
                "tags": "type ARRAY(Integer()) of users.tags has no form on sqlite",
                "address": "type INET() of users.address has no form on sqlite",
            },
        ),
        (
            "mysql",
            {
                "tags": "has no form on mysql or sqlite",
                "address": "has no form on mysql or sqlite",
                "nickname": "type String() of users.nickname has no form on mysql",
            },
        ),
    ],
)
def test_types_an_engine_cannot_create_are_flagged_not_portable(
    render: Callable[[str], Path],
    project_env: Path,
    project_name: str,
    flagged: dict[str, str],
) -> None:
    result = run(render(project_name), project_env, "python", "-c", ENGINE_ONLY)
    found = dict(line.split(" | ") for line in result.stdout.splitlines())
    for column in ("tags", "address", "data", "nickname", "title"):
        if column in flagged:
            assert flagged[column] in found[column], (column, found)
        else:
            assert found[column] == "", (column, found)
