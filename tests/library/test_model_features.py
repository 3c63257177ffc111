"""Valid SQLAlchemy models that the library's autogenerate hooks must leave
to Alembic rather than crash on: a computed column, and a server default drawn
from a sequence (`flask db migrate`, `upgrade` and `check` in-process on a
MiniProject on the server, with a row inserted before the check); SQLite's
batch rebuild keeping a generated column; and the review's rule for types the
production engine (or SQLite) cannot create."""

from collections.abc import Callable
from typing import Any

import flask_safe_migrations.sqlite  # noqa: F401  (the fixes, as env.py imports them)
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations, ops
from flask_safe_migrations import rules
from sqlalchemy.dialects import postgresql

from .miniproject import MiniProject

# A computed column on every server; on PostgreSQL also a sequence's
# next_value() as a server default (MariaDB's sequences are not in
# SQLAlchemy's MySQL dialect).
PEOPLE = """
{sequence}
class Person(Model):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    age: Mapped[int] = mapped_column(sa.Integer)
    # Nullable: MariaDB refuses NOT NULL on a generated column.
    double_age: Mapped[int | None] = mapped_column(sa.Integer, sa.Computed("age * 2"))
{ticket}"""
SEQUENCE = {
    "sequence": 'ticket_seq = sa.Sequence("ticket_seq")\n',
    "ticket": "    ticket: Mapped[int] = mapped_column(\n"
    "        sa.Integer, server_default=ticket_seq.next_value()\n"
    "    )\n",
}
# Alembic does not autogenerate sequences; the library's comparator
# (comparison.py) creates the one the default draws from, before the table.
CREATE_SEQUENCE = 'op.execute(sa.schema.CreateSequence(sa.Sequence("ticket_seq")))'


# SQLAlchemy's advice on PostgreSQL < 18, about the model as a user writes it.
@pytest.mark.filterwarnings("ignore:Computed column people.double_age:Warning")
@pytest.mark.parametrize("engine_name", ["postgresql", "mysql"])
def test_computed_columns_and_sequence_defaults_migrate_and_check_clean(
    engine_name: str,
    make_database: Callable[[str], str],
    make_mini_project: Callable[..., MiniProject],
) -> None:
    url = make_database(engine_name)
    postgresql_ = engine_name == "postgresql"
    parts = SEQUENCE if postgresql_ else dict.fromkeys(SEQUENCE, "")
    project = make_mini_project(
        models=PEOPLE.format(**parts),
        database_url=url,
        production_engine=engine_name,
    )
    app = project.app()

    # Crashed before: Alembic reads a reflected Computed's .arg before it
    # calls a compare_server_default hook; rendering read next_value().clauses.
    revision = project.migrate(app, "people")

    assert revision is not None
    script = revision.read_text()
    assert "sa.Computed(" in script
    if postgresql_:
        # Written as the sequence, which each engine compiles for itself.
        assert 'server_default=sa.Sequence("ticket_seq").next_value()' in script
        assert script.index(CREATE_SEQUENCE) < script.index('"people"')
    project.upgrade(app)
    with app.app_context(), app.extensions["sqlalchemy"].engine.begin() as c:
        c.execute(sa.text("INSERT INTO people (age) VALUES (21)"))
        row = c.execute(sa.text("SELECT * FROM people")).mappings().one()
    assert row["double_age"] == 42
    if postgresql_:
        assert row["ticket"] == 1
    # Clean: the sequence default read back as nextval('ticket_seq'::regclass)
    # means the model's next_value(); the computed column is Alembic's to compare.
    # (`flask db check`: a CommandError for any difference.)
    project.check(app)


def test_sqlite_batch_rebuild_keeps_generated_columns() -> None:
    """Alembic's batch rebuild on SQLite, on a table with a generated column:
    with rows, after an add_column that SQLite writes on the generated
    column's line."""
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
        rows = connection.execute(sa.text("SELECT * FROM people")).all()
    engine.dispose()
    assert rows == [(1, 3, 6, "x")]


# The review's rule for types an engine cannot create: what it finds for each
# column added to users, for a project on each production engine.
COLUMNS = {
    "tags": postgresql.ARRAY(sa.Integer()),
    "address": postgresql.INET(),
    "data": sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
    "nickname": sa.String(),
    "title": sa.String(50),
}


@pytest.mark.parametrize(
    ("production_engine", "flagged"),
    [
        (
            "postgresql",
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
    production_engine: str, flagged: dict[str, str]
) -> None:
    where = rules.Where(production_engine=production_engine)
    for name, type_ in COLUMNS.items():
        op = ops.AddColumnOp("users", sa.Column(name, type_))
        found = rules.findings(op, where)
        texts = [f.text for f in found if f.rule.name == "engine-only-type"]
        if name in flagged:
            assert len(texts) == 1 and flagged[name] in texts[0], (name, texts)
        else:
            assert texts == [], (name, texts)


GENERATED = """
class Person(Model):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    age: Mapped[int] = mapped_column(sa.Integer)
    double_age: Mapped[{annotation}] = mapped_column(
        sa.Integer, sa.Computed("age * 2")
    )
"""


def test_a_not_null_generated_column_is_flagged_where_mariadb_refuses_it(
    make_database: Callable[[str], str],
    make_mini_project: Callable[..., MiniProject],
) -> None:
    """Found while testing computed columns: MariaDB refuses NOT NULL on a
    generated column, so a MySQL project's review flags it (PostgreSQL's does
    not); the nullable form, its advice, migrates there."""
    column = sa.Column("double_age", sa.Integer, sa.Computed("age * 2"), nullable=False)
    op = ops.AddColumnOp("people", column)
    for engine, expected in (("mysql", 1), ("postgresql", 0), ("sqlite", 0)):
        found = rules.findings(op, rules.Where(production_engine=engine))
        named = [f for f in found if f.rule.name == "generated-not-null"]
        assert len(named) == expected, (engine, found)

    url = make_database("mysql")
    for annotation, flagged in (("int", True), ("int | None", False)):
        project = make_mini_project(
            models=GENERATED.format(annotation=annotation),
            database_url=url,
            production_engine="mysql",
        )
        app = project.app()
        revision = project.migrate(app, "people")
        assert revision is not None
        script = revision.read_text()
        assert ("NOT NULL generated column people.double_age" in script) is flagged
        if flagged:  # as the review says, MariaDB refuses it
            with pytest.raises(sa.exc.DBAPIError, match=r"1064|syntax"):
                project.upgrade(app)
        else:
            project.upgrade(app)
            project.check(app)
        project.close()


def _index(*columns: Any, **kw: Any) -> ops.CreateIndexOp:
    return ops.CreateIndexOp("ix", "t", list(columns), **kw)


def _column(**kw: Any) -> ops.AddColumnOp:
    return ops.AddColumnOp("t", sa.Column("n", sa.Integer, **kw))


LIVE = sa.text("live")
NEXT = sa.Sequence("s").next_value()


def _case(id: str, op: ops.MigrateOperation, engine: str, expected: str | None) -> Any:
    return pytest.param(op, engine, expected, id=id)


@pytest.mark.parametrize(
    ("op", "production_engine", "expected"),
    [
        _case(
            "partial-index-pg-only-condition",
            _index("code", postgresql_where=LIVE),
            "postgresql",
            "on sqlite",
        ),
        _case(
            "partial-index-both-conditions",
            _index("code", postgresql_where=LIVE, sqlite_where=LIVE),
            "postgresql",
            None,
        ),
        _case(
            "partial-index-mysql",
            _index("code", postgresql_where=LIVE, sqlite_where=LIVE),
            "mysql",
            "on mysql",
        ),
        _case(
            "expression-index-pg",
            _index(sa.func.lower(sa.column("e"))),
            "postgresql",
            None,
        ),
        _case(
            "expression-index-mysql",
            _index(sa.func.lower(sa.column("e"))),
            "mysql",
            "on mysql",
        ),
        # As a revision spells an expression, read back by the migration tests.
        _case(
            "literal-column-index-mysql",
            _index(sa.literal_column("lower(e)")),
            "mysql",
            "on mysql",
        ),
        _case("column-index-mysql", _index(sa.column("e"), "f"), "mysql", None),
        _case(
            "schema-pg",
            ops.CreateTableOp("t", [], schema="b"),
            "postgresql",
            "on sqlite",
        ),
        _case(
            "schema-mysql",
            ops.CreateTableOp("t", [], schema="b"),
            "mysql",
            "on mysql or sqlite",
        ),
        _case("no-schema-mysql", ops.CreateTableOp("t", []), "mysql", None),
        _case(
            "sequence-default",
            _column(server_default=NEXT),
            "postgresql",
            "s.next_value() of t.n",
        ),
        _case(
            "sequence-default-altered",
            ops.AlterColumnOp("t", "n", modify_server_default=sa.DefaultClause(NEXT)),
            "postgresql",
            "on sqlite",
        ),
        _case(
            "text-default",
            _column(server_default=sa.text("1 + 1")),
            "postgresql",
            None,
        ),
        _case(
            "fetched-value",
            _column(server_default=sa.FetchedValue()),
            "postgresql",
            None,
        ),
        _case("value-default", _column(server_default="x"), "mysql", None),
    ],
)
def test_features_an_engine_lacks_are_flagged_not_portable(
    op: ops.MigrateOperation, production_engine: str, expected: str | None
) -> None:
    """The rules the model matrix (test_model_matrix.py) meets, on the forms it
    does not build: one engine's partial index, a revision's literal_column
    expression, an altered default."""
    found = rules.findings(op, rules.Where(production_engine=production_engine))
    texts = [f.text for f in found if f.kind == rules.NOT_PORTABLE]
    if expected is None:
        assert texts == []
    else:
        assert len(texts) == 1 and expected in texts[0], texts
