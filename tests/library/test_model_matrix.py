"""The model features a project may use, on every engine: each one's whole
migration workflow, or a NOT PORTABLE finding at `flask db migrate` naming the
feature and its portable form.

For each feature (one small model, added to a project whose table ``items``
already holds rows) and each engine (the project's production engine set to
it; and a project whose production engine is PostgreSQL, developed on SQLite:
its revision run on SQLite, and the same revision run on PostgreSQL),
in-process on a MiniProject with one throw-away database: autogenerate
(`flask db migrate`), upgrade, insert rows, `flask db check` clean, downgrade,
upgrade again with the rows of ``items`` kept, insert again, check again.

Where an engine cannot have the feature, the expected outcome is the review's
NOT PORTABLE finding in the revision `flask db migrate` writes (and, on that
engine, an upgrade that indeed fails): not a crash in the library's hooks, and
not a revision written without a word that fails at `flask db upgrade`. The
expectations (CELLS) are also the table of the library's
docs/model-features.md, which test_the_documented_matrix_is_the_tested_one
keeps equal to them.
"""

import re
import runpy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_safe_migrations import review, rules

from ..helpers import ROOT
from .miniproject import MiniProject

DOC = ROOT / "template/libs/flask-safe-migrations/docs/model-features.md"

# The table that is there before each feature, with rows.
ITEMS = """
class Item(Model):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
"""
ITEM_ROWS = [
    "INSERT INTO items (name) VALUES ('first')",
    "INSERT INTO items (name) VALUES ('second')",
]


@dataclass(frozen=True)
class Feature:
    """A model using one feature, the rows a test inserts into its table (SQL
    every engine runs), what a row reads back as (a SELECT and its first row),
    and a statement the feature must refuse (None: none)."""

    name: str
    model: str
    inserts: list[str]
    select: str
    expected: tuple[object, ...]
    refused: str | None = None
    # What the NOT PORTABLE finding names, where an engine lacks the feature.
    words: str = ""


FEATURES = [
    Feature(
        "computed column",
        """
class Measure(Model):
    __tablename__ = "measures"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(sa.Integer)
    # Nullable: MariaDB refuses NOT NULL on a generated column.
    twice: Mapped[int | None] = mapped_column(
        sa.Integer, sa.Computed("size * 2", persisted=True)
    )
""",
        ["INSERT INTO measures (size) VALUES (21)"],
        "SELECT size, twice FROM measures",
        (21, 42),
    ),
    Feature(
        "identity column",
        """
class Ticket(Model):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(sa.Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(50))
""",
        [
            "INSERT INTO tickets (title) VALUES ('a')",
            "INSERT INTO tickets (title) VALUES ('b')",
        ],
        "SELECT id, title FROM tickets ORDER BY id",
        (1, "a"),
    ),
    Feature(
        "sequence default",
        """
invoice_numbers = sa.Sequence("invoice_numbers")


class Invoice(Model):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(
        sa.Integer, server_default=invoice_numbers.next_value()
    )
""",
        ["INSERT INTO invoices (id) VALUES (7)"],
        "SELECT id, number FROM invoices",
        (7, 1),
        words="next_value()",
    ),
    Feature(
        "FetchedValue",
        """
class Audit(Model):
    __tablename__ = "audits"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Set by a trigger the project writes itself: the model only says so.
    stamp: Mapped[str | None] = mapped_column(
        sa.String(30), server_default=sa.FetchedValue()
    )
""",
        ["INSERT INTO audits (id) VALUES (1)"],
        "SELECT id, stamp FROM audits",
        (1, None),
    ),
    Feature(
        "text() default",
        """
class Order(Model):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(20), server_default=sa.text("'new'"))
    quantity: Mapped[int] = mapped_column(sa.Integer, server_default=sa.text("1 + 1"))
""",
        ["INSERT INTO orders (id) VALUES (1)"],
        "SELECT id, state, quantity FROM orders",
        (1, "new", 2),
    ),
    Feature(
        "ARRAY",
        """
from sqlalchemy.dialects import postgresql


class Tagged(Model):
    __tablename__ = "tagged"

    id: Mapped[int] = mapped_column(primary_key=True)
    tags: Mapped[list[int]] = mapped_column(postgresql.ARRAY(sa.Integer))
""",
        ["INSERT INTO tagged (id, tags) VALUES (1, '{1,2}')"],
        "SELECT id, tags FROM tagged",
        (1, [1, 2]),
        words="ARRAY",
    ),
    Feature(
        "non-native Enum",
        """
class Job(Model):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(
        sa.Enum("queued", "done", name="job_state", native_enum=False, length=20)
    )
""",
        ["INSERT INTO jobs (id, state) VALUES (1, 'queued')"],
        "SELECT id, state FROM jobs",
        (1, "queued"),
    ),
    Feature(
        "native Enum",
        """
class Task(Model):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A type of its own on PostgreSQL (enums.py), an inline ENUM on
    # MariaDB, a VARCHAR on SQLite.
    state: Mapped[str] = mapped_column(sa.Enum("open", "closed", name="task_state"))
""",
        ["INSERT INTO tasks (id, state) VALUES (1, 'open')"],
        "SELECT id, state FROM tasks",
        (1, "open"),
    ),
    Feature(
        "CHECK constraint",
        """
class Stock(Model):
    __tablename__ = "stock"
    __table_args__ = (sa.CheckConstraint("count >= 0", name="count_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(sa.Integer)
""",
        ["INSERT INTO stock (id, count) VALUES (1, 5)"],
        "SELECT id, count FROM stock",
        (1, 5),
        refused="INSERT INTO stock (id, count) VALUES (2, -1)",
    ),
    Feature(
        "partial index",
        """
class Coupon(Model):
    __tablename__ = "coupons"
    __table_args__ = (
        sa.Index(
            "ix_coupons_live_code",
            "code",
            unique=True,
            postgresql_where=sa.text("live"),
            sqlite_where=sa.text("live"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(20))
    live: Mapped[bool] = mapped_column(sa.Boolean)
""",
        [
            "INSERT INTO coupons (id, code, live) VALUES (1, 'A', false)",
            "INSERT INTO coupons (id, code, live) VALUES (2, 'A', false)",
            "INSERT INTO coupons (id, code, live) VALUES (3, 'A', true)",
        ],
        "SELECT count(*) FROM coupons",
        (3,),
        refused="INSERT INTO coupons (id, code, live) VALUES (4, 'A', true)",
        words="partial index",
    ),
    Feature(
        "expression index",
        """
class Member(Model):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(100))


sa.Index("ix_members_lower_email", sa.func.lower(Member.email), unique=True)
""",
        ["INSERT INTO members (id, email) VALUES (1, 'Ann@example.com')"],
        "SELECT id, email FROM members",
        (1, "Ann@example.com"),
        refused="INSERT INTO members (id, email) VALUES (2, 'ann@EXAMPLE.com')",
        words="expression index",
    ),
    Feature(
        "schema",
        """
class Payment(Model):
    __tablename__ = "payments"
    __table_args__ = {"schema": "billing"}

    id: Mapped[int] = mapped_column(primary_key=True)
    amount: Mapped[int] = mapped_column(sa.Integer)
""",
        ["INSERT INTO billing.payments (id, amount) VALUES (1, 10)"],
        "SELECT id, amount FROM billing.payments",
        (1, 10),
        words="schema billing",
    ),
    Feature(
        "comments",
        """
class Note(Model):
    __tablename__ = "notes"
    __table_args__ = {"comment": "Notes about items"}

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(sa.String(200), comment="What the note says")
""",
        ["INSERT INTO notes (id, body) VALUES (1, 'x')"],
        "SELECT id, body FROM notes",
        (1, "x"),
    ),
]


@dataclass(frozen=True)
class Engine:
    """A column of the matrix: the database the workflow runs on, and the
    project's production engine."""

    name: str
    database: str
    production_engine: str
    title: str  # the doc table's heading
    # The revisions autogenerated on a SQLite development database, as a
    # developer writes them, then run on ``database``.
    written_on_sqlite: bool = False


ENGINES = [
    Engine("sqlite", "sqlite", "sqlite", "SQLite"),
    Engine("postgresql", "postgresql", "postgresql", "PostgreSQL"),
    Engine("mysql", "mysql", "mysql", "MariaDB (production mysql)"),
    Engine(
        "sqlite, production postgresql",
        "sqlite",
        "postgresql",
        "SQLite (production postgresql)",
    ),
    Engine(
        "postgresql, written on sqlite",
        "postgresql",
        "postgresql",
        "PostgreSQL, revision written on SQLite",
        written_on_sqlite=True,
    ),
]


@dataclass(frozen=True)
class Outcome:
    """What a cell expects: the rules that flag the revision at `flask db
    migrate` (NOT PORTABLE), and whether the workflow runs on this engine
    (False: the upgrade fails here, or the feature is missing, as the finding
    says)."""

    flagged: tuple[str, ...] = ()
    runs: bool = True

    def text(self) -> str:
        text = "works" if self.runs else "fails"
        if self.flagged:
            text = f"NOT PORTABLE ({', '.join(self.flagged)}); {text} here"
        return text


WORKS = Outcome()


def flagged(*rules: str, runs: bool) -> Outcome:
    return Outcome(rules, runs)


# feature -> the outcome on each of ENGINES, in order.
CELLS: dict[str, list[Outcome]] = {
    "computed column": [WORKS, WORKS, WORKS, WORKS, WORKS],
    "identity column": [WORKS, WORKS, WORKS, WORKS, WORKS],
    "sequence default": [
        flagged("engine-only-default", runs=False),
        flagged("engine-only-default", runs=True),
        flagged("engine-only-default", runs=True),
        flagged("engine-only-default", runs=False),
        flagged("engine-only-default", runs=False),
    ],
    "FetchedValue": [WORKS, WORKS, WORKS, WORKS, WORKS],
    "text() default": [WORKS, WORKS, WORKS, WORKS, WORKS],
    "ARRAY": [
        flagged("engine-only-type", runs=False),
        flagged("engine-only-type", runs=True),
        flagged("engine-only-type", runs=False),
        flagged("engine-only-type", runs=False),
        flagged("engine-only-type", runs=True),
    ],
    "non-native Enum": [WORKS, WORKS, WORKS, WORKS, WORKS],
    "native Enum": [WORKS, WORKS, WORKS, WORKS, WORKS],
    "CHECK constraint": [WORKS, WORKS, WORKS, WORKS, WORKS],
    "partial index": [
        WORKS,
        WORKS,
        flagged("engine-only-index", runs=False),
        WORKS,
        WORKS,
    ],
    "expression index": [
        WORKS,
        WORKS,
        flagged("engine-only-index", runs=False),
        WORKS,
        WORKS,
    ],
    "schema": [
        flagged("engine-only-schema", runs=False),
        flagged("engine-only-schema", runs=True),
        flagged("engine-only-schema", runs=False),
        flagged("engine-only-schema", runs=False),
        flagged("engine-only-schema", runs=False),
    ],
    "comments": [WORKS, WORKS, WORKS, WORKS, WORKS],
}

CASES = [
    pytest.param(feature, engine, outcome, id=f"{feature.name}-{engine.name}")
    for feature in FEATURES
    for engine, outcome in zip(ENGINES, CELLS[feature.name], strict=True)
]


def run_all(connection: sa.Connection, statements: list[str]) -> None:
    for statement in statements:
        connection.execute(sa.text(statement))


@pytest.mark.parametrize(("feature", "engine", "outcome"), CASES)
def test_feature_migrates_on_engine(
    feature: Feature,
    engine: Engine,
    outcome: Outcome,
    make_database: Callable[[str], str],
    make_mini_project: Callable[..., MiniProject],
    tmp_path: Path,
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'deployed.db'}"
        if engine.database == "sqlite"
        else make_database(engine.database)
    )
    project = make_mini_project(
        models=ITEMS, database_url=url, production_engine=engine.production_engine
    )
    # Autogenerate on the database itself, or on a SQLite development one.
    written_on = {"SQLALCHEMY_DATABASE_URI": project.development_url}
    overrides = written_on if engine.written_on_sqlite else {}
    app = project.app()
    db = app.extensions["sqlalchemy"]
    assert project.migrate(project.app(**overrides), "items") is not None
    if engine.written_on_sqlite:
        project.upgrade(project.app(**overrides))
    project.upgrade(app)
    with app.app_context(), db.engine.begin() as connection:
        run_all(connection, ITEM_ROWS)

    project.set_models(ITEMS + feature.model)
    app = project.app()
    db = app.extensions["sqlalchemy"]
    revision = project.migrate(project.app(**overrides), feature.name)
    assert revision is not None
    script = revision.read_text()
    namespace = runpy.run_path(str(revision))
    found = [
        f
        for f in review.findings_in_revision(
            revision, namespace, engine.production_engine
        )
        if f.kind == rules.NOT_PORTABLE
    ]
    comments = re.sub(r"\s*\n\s*# ?", " ", script)
    for finding in found:
        assert f"NOT PORTABLE: {finding.text}." in comments
        assert feature.words in finding.text, finding.text
        assert finding.fix() in comments, finding.fix()
    assert tuple(sorted({f.rule.name for f in found})) == outcome.flagged, script

    if not outcome.runs:  # as the finding says: fails, or lacks the feature
        # The engine refuses the DDL (DBAPIError), or SQLAlchemy cannot compile
        # it for the engine (CompileError; NotImplementedError for a sequence
        # on SQLite), or the rows show the feature missing (DBAPIError).
        with pytest.raises(
            (sa.exc.DBAPIError, sa.exc.CompileError, NotImplementedError)
        ):
            project.upgrade(app)
            _rows(app, feature)
        return
    project.upgrade(app)
    _rows(app, feature)
    project.check(app)
    project.downgrade(app)
    with app.app_context(), db.engine.connect() as connection:
        assert connection.execute(
            sa.text("SELECT name FROM items ORDER BY id")
        ).scalars().all() == ["first", "second"]
    project.upgrade(app)
    with app.app_context(), db.engine.connect() as connection:
        assert connection.execute(
            sa.text("SELECT name FROM items ORDER BY id")
        ).scalars().all() == ["first", "second"]
    _rows(app, feature)
    project.check(app)


def _rows(app: Flask, feature: Feature) -> None:
    """Insert the feature's rows, read the first back, and see its refused
    statement refused."""
    db = app.extensions["sqlalchemy"]
    with app.app_context(), db.engine.begin() as connection:
        run_all(connection, feature.inserts)
        assert (
            tuple(connection.execute(sa.text(feature.select)).first() or ())
            == feature.expected
        )
    if feature.refused is not None:
        with (
            app.app_context(),
            db.engine.begin() as connection,
            pytest.raises(sa.exc.DBAPIError),
        ):
            connection.execute(sa.text(feature.refused))


# --- The documented matrix --------------------------------------------------

BEGIN = "<!-- matrix: generated from tests/library/test_model_matrix.py -->"
END = "<!-- end of matrix -->"


def matrix_table() -> str:
    """CELLS as the Markdown table of docs/model-features.md."""
    rows = [
        "| Feature | " + " | ".join(e.title for e in ENGINES) + " |",
        "|---" * (len(ENGINES) + 1) + "|",
    ]
    for feature in FEATURES:
        cells = " | ".join(o.text() for o in CELLS[feature.name])
        rows.append(f"| {feature.name} | {cells} |")
    return "\n".join(rows)


def test_the_documented_matrix_is_the_tested_one() -> None:
    """docs/model-features.md's table is CELLS: regenerate it with
    `uv run python -m tests.library.test_model_matrix` after changing them."""
    text = DOC.read_text()
    documented = text.partition(BEGIN)[2].partition(END)[0].strip()
    assert documented == matrix_table(), (
        f"{DOC.name} is out of date; its table between the markers should be:"
        f"\n\n{matrix_table()}"
    )
    assert set(CELLS) == {f.name for f in FEATURES}


if __name__ == "__main__":
    print(matrix_table())
