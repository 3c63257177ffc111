"""The migration tests. A project enables them by importing them into one of
its test modules (pytest collects imported test functions):

    from flask_safe_migrations.testing import *  # noqa: F403

They migrate the session's test databases (the main one, and one for each
bind) up and down, one revision at a time, with rows in every table (a
migration that only fails on a table with rows fails here, not in
production), and leave them at the newest revision for the other tests. For
realistic rows, define sample_row() in tests/migration_rows.py, next to the
module that imports these (docs/testing.md, and the project's migrations/README,
"Migration tests carry data", show how).

In CI (and with `pytest --fresh-db`) they prove the whole history. A local
run skips what an earlier run proved on the same databases with the same
files: revisions whose walk passed, unless they or a revision before them
changed, and the upgrade from empty to an unchanged history. It always walks
the newest revisions.
"""

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError

from . import model_modules, pytest_plugin, review, running_release, template_files
from .reuse import Proofs
from .revision_steps import RevisionSteps
from .rules import DOWNGRADE
from .sample_rows import Customise, SampleRows, count_rows, delete_all_rows, named_in

__all__ = [
    "test_every_model_module_is_imported",
    "test_every_review_finding_is_acknowledged",
    "test_every_revision_keeps_the_rows_and_downgrades_and_upgrades_again",
    "test_models_match_the_migrations",
    "test_no_template_file_is_missing",
    "test_retired_columns_accept_inserts",
    "test_the_package_is_the_one_copier_answers_name",
    "test_there_is_one_head",
    "test_upgrade_builds_the_models_tables_on_an_empty_database",
]


def _db(app: Flask) -> SQLAlchemy:
    db: SQLAlchemy = app.extensions["sqlalchemy"]
    return db


def table_names(db: SQLAlchemy, bind: str | None = None) -> set[str]:
    """The tables of the database of ``bind`` (None: the main one), named as
    its metadata names them ("schema.table" outside the default schema)."""
    inspector = inspect(db.engines[bind])
    metadata = db.metadatas[bind]
    schemas = {table.schema for table in metadata.tables.values()} | {None}
    return {
        f"{schema}.{name}" if schema else name
        for schema in schemas
        for name in inspector.get_table_names(schema=schema)
    }


def drop_all_tables(db: SQLAlchemy) -> None:
    """Empty the test databases, faster than downgrading through the history."""
    for engine in db.engines.values():
        pytest_plugin.drop_all_tables(db, engine)


def test_there_is_one_head(request: pytest.FixtureRequest) -> None:
    """Runs first, and without a database."""
    found = pytest_plugin.project_of(request.config)
    heads = ScriptDirectory(str(found.root / "migrations")).get_heads()
    assert len(heads) <= 1, (
        f"The migrations have several heads {heads}, from revisions written on"
        " different branches. Join them with: flask db merge heads -m merge"
    )


def test_every_model_module_is_imported(request: pytest.FixtureRequest) -> None:
    """A model module that the models package does not import is a table that
    `flask db migrate` never sees (and `flask db check` never misses)."""
    found = pytest_plugin.project_of(request.config)
    models = importlib.import_module(found.models)
    missing = model_modules.unimported(
        models, pytest_plugin.app_modules(request.config)
    )
    if missing:
        message = model_modules.explain(missing, found.root)
        pytest.fail(message, pytrace=False)


def test_the_package_is_the_one_copier_answers_name(
    request: pytest.FixtureRequest,
) -> None:
    """`copier update` writes the template's files into the package that
    .copier-answers.yml names (README.md, "Renaming the package")."""
    found = pytest_plugin.project_of(request.config)
    package = pytest_plugin.package_dir(found)
    if problem := template_files.renamed_package(found.root, package):
        pytest.fail(problem, pytrace=False)


def test_no_template_file_is_missing(request: pytest.FixtureRequest) -> None:
    """`copier update` keeps a file the project deleted deleted: the files the
    app and `flask db` need must stay (template_files.py)."""
    found = pytest_plugin.project_of(request.config)
    package = pytest_plugin.package_dir(found)
    migrations = found.root / "migrations"
    if missing := template_files.missing(found.root, package, migrations):
        pytest.fail(template_files.explain_missing(found.root, missing), pytrace=False)


def test_upgrade_builds_the_models_tables_on_an_empty_database(
    session_app: Flask, revision_steps: RevisionSteps, proofs: Proofs | None
) -> None:
    """Locally, once proven for this history, the kept databases (which the
    same revisions built) stand in for a new upgrade from empty."""
    db = _db(session_app)
    if proofs is None or not proofs.upgrade_from_empty_proven():
        drop_all_tables(db)
        revision_steps.upgrade_to_heads()

    for bind, metadata in db.metadatas.items():
        assert table_names(db, bind) == {*metadata.tables, "alembic_version"}, bind
    if proofs is not None:
        proofs.proved_upgrade_from_empty()


def test_models_match_the_migrations(alembic_config: Config) -> None:
    """Fails when a model changed without a migration: run `flask db migrate`."""
    command.check(alembic_config)


def test_retired_columns_accept_inserts(session_app: Flask) -> None:
    """A column the models keep in its table but no longer map (retired
    before it is dropped, migrations/README "Dropping a column") is nullable
    or has a default: the ORM's inserts leave it out."""
    with session_app.app_context():
        problems = running_release.required_retired_columns(_db(session_app))
    assert not problems, "\n".join(problems)


def test_every_revision_keeps_the_rows_and_downgrades_and_upgrades_again(
    session_app: Flask,
    revision_steps: RevisionSteps,
    proofs: Proofs | None,
    request: pytest.FixtureRequest,
) -> None:
    """Each revision in turn, base first, with rows in every table (new ones in
    the tables it names) before each step: its upgrade must keep every row, and
    its downgrade must run. Locally, the revisions an earlier run proved are
    skipped: the walk starts from the newest revisions, stepped down."""
    db = _db(session_app)
    rows = SampleRows(user_sample_row(request.path))
    history = revision_steps.in_order()
    heads = revision_steps.heads()
    revisions = history if proofs is None else proofs.to_walk(history, heads)
    if revisions == history:
        drop_all_tables(db)  # the whole history down is tested step by step below
    else:  # down through them, newest first, with rows; then up as below
        revision_steps.upgrade_to_heads()
        for revision in reversed(revisions):
            downgrade(db, rows, revision, revision_steps)
    pytest_plugin.stash_walk(
        request.config,
        f"{len(revisions)} of {len(history)} revisions"
        + ("" if revisions == history else "; the others were proven by earlier runs"),
    )
    counts = count_rows(db.engine)
    for revision in revisions:
        before = fill(db, rows, revision, counts)
        with_rows("Upgrading to", revision, revision_steps.upgrade)
        after = count_rows(db.engine)
        assert_no_row_lost(revision, before, after)
        downgrade(db, rows, revision, revision_steps)
        fill(db, rows, revision, count_rows(db.engine))
        revision_steps.upgrade(revision)
        counts = count_rows(db.engine)
    if proofs is not None:
        proofs.proved_walk(revisions)


def downgrade(
    db: SQLAlchemy, rows: SampleRows, revision: Script, revision_steps: RevisionSteps
) -> None:
    """Downgrade from ``revision`` with rows in its tables; on empty tables if
    it acknowledges that rows stop its downgrade (a "downgrade: ..." finding of
    the review in its ACKNOWLEDGED: a column that cannot be added back)."""
    if rows_stop_downgrade(revision):
        delete_all_rows(db.engine)
        with_rows("Downgrading from", revision, revision_steps.downgrade, empty=True)
        return
    fill(db, rows, revision, count_rows(db.engine))
    with_rows("Downgrading from", revision, revision_steps.downgrade)


def rows_stop_downgrade(revision: Script) -> bool:
    """Whether ``revision`` acknowledges a finding of the review in its
    downgrade(): each is about rows the downgrade cannot take (rules.py)."""
    accepted = review.acknowledged(revision.module)
    return any(text.startswith(DOWNGRADE) for text in accepted)


def fill(
    db: SQLAlchemy, rows: SampleRows, revision: Script, counts: dict[str, int]
) -> dict[str, int]:
    """New rows in the empty tables and in the tables ``revision`` names (the
    ones it can change), which keeps each step's cost flat as the history
    grows. ``counts``: the rows in each table; returns them after the fill."""
    empty = {table for table, count in counts.items() if count == 0}
    source = Path(revision.path).read_text()
    added = rows.fill(db.engine, empty | named_in(source, counts))
    return {table: count + added.get(table, 0) for table, count in counts.items()}


NULL_HINT = (
    "A NOT NULL column that upgrade() adds, or downgrade() adds back, needs a"
    " server_default; or three steps: add it nullable, fill it, make it NOT NULL"
    " (migrations/README)."
)
VALUES_HINT = (
    "Convert or fill the existing values in the revision first; if production's"
    " values fit where the sample rows do not (a cast, a format), give the tests"
    ' realistic ones in tests/migration_rows.py (migrations/README, "Migration'
    ' tests carry data").'
)

SCHEMA_HINT = (
    "The revision's DDL names something that is missing or already there (a"
    " downgrade that does not undo its upgrade, or an upgrade that assumes"
    " what the previous revision left): run it up, down and up on an empty"
    " database to see."
)
# MySQL/MariaDB errors about the schema, not the data: a table, column, key
# or index that exists already, or does not.
_MYSQL_SCHEMA_ERRORS = {1050, 1051, 1054, 1060, 1061, 1091, 1146}


def _about_the_schema(exc: DBAPIError) -> bool:
    """Whether the database refused the DDL itself (an object missing or
    already there), whatever rows the tables hold."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str):  # PostgreSQL: class 42, undefined/duplicate
        return sqlstate in {
            "42P01",
            "42P06",
            "42P07",
            "42701",
            "42703",
            "42704",
            "42710",
        }
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    if isinstance(code, int):
        return code in _MYSQL_SCHEMA_ERRORS
    message = str(exc.orig).lower()
    return "already exists" in message or message.startswith("no such")


def with_rows(
    what: str,
    revision: Script,
    step: Callable[[Script], None],
    empty: bool = False,
) -> None:
    """Run ``step``; a refusal becomes one paragraph about the rows (``empty``:
    the tables were emptied for it)."""
    try:
        step(revision)
    except CommandError as exc:  # the migration's own checks explain themselves
        reason = str(exc)
    except DBAPIError as exc:
        error = str(exc.orig).strip().splitlines()[0]
        if _about_the_schema(exc):  # the rows have nothing to do with it
            reason = f"{error}. {SCHEMA_HINT}"
        else:
            reason = f"{error}. {NULL_HINT if 'null' in error.lower() else VALUES_HINT}"
    else:
        return
    tables = "are empty" if empty else "hold rows, as production's do"
    pytest.fail(
        f"{what} {revision.revision} ({Path(revision.path).name}) fails on a"
        f" database whose tables {tables}: {reason}",
        pytrace=False,
    )


def assert_no_row_lost(
    revision: Script, before: dict[str, int], after: dict[str, int]
) -> None:
    acknowledged = review.acknowledged(revision.module)
    lost = [
        f"{table} ({count} rows, then {after[table]})"
        for table, count in before.items()
        if after.get(table, count) < count
        and f"delete rows from {table}" not in acknowledged
    ]
    assert not lost, (
        f"Upgrading to {revision.revision} ({Path(revision.path).name}) lost rows"
        f" from {', '.join(lost)}. If the revision deletes them on purpose, list"
        f' "delete rows from <table>" in its {review.ACKNOWLEDGEMENT}.'
    )


def user_sample_row(test_module: Path) -> Customise | None:
    """sample_row() from migration_rows.py next to ``test_module``, if the
    project has one."""
    path = test_module.with_name("migration_rows.py")
    spec = importlib.util.spec_from_file_location("migration_rows", path)
    if not path.exists() or spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sample_row: Customise = module.sample_row
    return sample_row


def test_every_review_finding_is_acknowledged(
    alembic_config: Config, request: pytest.FixtureRequest
) -> None:
    """What the review flags in a revision's upgrade() (data loss, a change that
    fails once a table has rows, a lock that blocks traffic, a rename that
    breaks the running release), and in its downgrade() (what the rows stop),
    is written the safe way or acknowledged in the revision's ACKNOWLEDGED list
    (migrations/README, "What the review flags")."""
    engine = pytest_plugin.project_of(request.config).production_engine
    unacknowledged = []
    for revision in ScriptDirectory.from_config(alembic_config).walk_revisions():
        path = Path(revision.path)
        for finding in review.unacknowledged(path, revision.module, engine):
            unacknowledged.append(f"{path.name}: {finding.text!r} ({finding.kind})")
    assert not unacknowledged, (
        "Revisions with findings of the review that they do not acknowledge:\n  "
        + "\n  ".join(unacknowledged)
        + "\nWrite each the safe way (`flask db migrate` printed it;"
        ' migrations/README, "What the review flags", has them all), or, if'
        " it is intended, add its text to"
        f' {review.ACKNOWLEDGEMENT} in that revision (a "downgrade: ..." one:'
        " the walk then downgrades that revision on empty tables). A dropped"
        " and re-added"
        " column or table that was renamed: use alter_column(...,"
        " new_column_name=...) or op.rename_table() instead."
    )
