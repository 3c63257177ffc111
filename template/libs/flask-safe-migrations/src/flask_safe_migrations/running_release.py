"""Refuse a drop that the release still running would meet, before deploy.

    python -m flask_safe_migrations.running_release BASE

During a rolling deploy the previous release keeps serving while the new
one's migration runs. A column it still maps that a revision drops fails
each of its queries on that table (UndefinedColumn, "no such column") until
its last instance is replaced, while `flask db-status` calls the database
ready. The safe way takes two releases (migrations/README, "Dropping a
column"):

1. Retire: the model keeps the column in its table but stops mapping it,
   ``name: Unmapped[str | None] = unmapped_column(sa.String(100))``
   (SQLAlchemy 2.1.5; on 2.0, ``__mapper_args__ = {"exclude_properties":
   ["name"]}``, which 2.1 deprecates). Autogenerate sees no change; the ORM
   no longer reads or writes the column. It must be nullable or have a
   default, or the ORM's inserts, which leave it out, fail.
2. Drop: a later release removes it from the model; `flask db migrate`
   writes the drop_column.

BASE is the release that runs when this change deploys: the branch the
change merges into (CI: origin/main), or better the deployed release's tag.
This command reads the models as they are at `git merge-base BASE HEAD`
(git archive into a temporary folder, imported by a Python of the same
environment), and refuses each drop_column and drop_table in the revisions
added since then whose column or table those models still map. It also
refuses a column that the models of the working tree leave unmapped (a
retired one) while it is NOT NULL without a default. A drop that may fail
the old instances (they are stopped before the migration) is accepted by
listing the finding's text in the revision's ACKNOWLEDGED.
"""

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from alembic.operations import ops
from alembic.script import ScriptDirectory
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Column, Connection, Table, inspect
from sqlalchemy.exc import NoSuchTableError

from . import project, review
from .environment import ConfigError
from .lint_sql import git

# What a release maps: table name -> the names of the columns its ORM maps.
Mapped = dict[str, list[str]]

_DUMP = (
    "import sys; from flask_safe_migrations import running_release;"
    " running_release.write_mapped_columns(sys.argv[1])"
)


def mapped_columns(db: SQLAlchemy) -> Mapped:
    """The columns the ORM maps, per table (tables without a mapped class are
    left out: no code of the app reads them through the ORM)."""
    found: dict[str, set[str]] = {}
    # Flask-SQLAlchemy's db.Model is typed without the declarative registry.
    for mapper in cast(Any, db.Model).registry.mappers:
        for table in mapper.tables:
            if isinstance(table, Table):
                found.setdefault(table.fullname, set())
        for prop in mapper.column_attrs:
            for column in prop.columns:
                if isinstance(column, Column) and isinstance(column.table, Table):
                    found.setdefault(column.table.fullname, set()).add(column.name)
    return {table: sorted(columns) for table, columns in sorted(found.items())}


def retired_columns(db: SQLAlchemy) -> list[Column[Any]]:
    """The columns of mapped tables that no mapper maps."""
    mapped = mapped_columns(db)
    return [
        column
        for metadata in db.metadatas.values()
        for table in metadata.tables.values()
        if table.fullname in mapped
        for column in table.columns
        if column.name not in mapped[table.fullname]
    ]


def inserts_fail(column: Column[Any]) -> bool:
    """An ORM insert, which leaves the unmapped ``column`` out, fails."""
    return not (
        column.nullable
        or column.server_default is not None
        or column.default is not None
        or column.computed is not None
        or column.identity is not None
    )


def missing_columns(db: SQLAlchemy) -> list[str]:
    """The mapped columns ("table.column") that the databases lack: one
    inspector call per mapped table."""
    mapped = mapped_columns(db)
    missing = []
    for bind, metadata in db.metadatas.items():
        tables = [t for t in metadata.tables.values() if t.fullname in mapped]
        if not tables:
            continue
        with db.engines[bind].connect() as connection:
            missing += _missing(connection, tables, mapped)
    return missing


def _missing(connection: Connection, tables: list[Table], mapped: Mapped) -> list[str]:
    inspector = inspect(connection)
    missing = []
    for table in tables:
        try:
            columns = inspector.get_columns(table.name, schema=table.schema)
        except NoSuchTableError:
            columns = []
        present = {column["name"] for column in columns}
        missing += [
            f"{table.fullname}.{name}"
            for name in mapped[table.fullname]
            if name not in present
        ]
    return missing


# --- The models of a release --------------------------------------------------


def app_of(root: Path) -> Flask:
    """The app of the project in ``root`` (already importable), in testing
    mode: no secret key or production database is needed to read its models."""
    import importlib

    found = project.load(root)
    module, _, name = found.app.partition(":")
    app: Flask = getattr(importlib.import_module(module), name)({"TESTING": True})
    return app


def write_mapped_columns(path: str) -> None:
    """Write the current folder's project's mapped columns to ``path`` (JSON):
    what the subprocess for BASE's models runs."""
    app = app_of(Path.cwd())
    with app.app_context():
        db: SQLAlchemy = app.extensions["sqlalchemy"]
        Path(path).write_text(json.dumps(mapped_columns(db)))


def base_mapped_columns(commit: str, label: str) -> Mapped:
    """The columns the project's models map at ``commit``: its files taken
    with `git archive`, imported in a Python of this environment (whose
    flask-safe-migrations reads them), so that nothing of the working tree's
    code is mixed in. Empty when the project did not exist then."""
    prefix = (git("rev-parse", "--show-prefix") or [""])[0]
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, *([prefix] if prefix else [])],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(
            f"`git archive {commit}` failed: {archive.stderr.decode().strip()}"
        )
    with tempfile.TemporaryDirectory(prefix="running-release-") as directory:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            # The "data" filter (no links out, no absolute paths) is in Python
            # 3.11.4 and later; the archive is the project's own either way.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(directory, filter="data")
            else:
                tar.extractall(directory)
        root = Path(directory) / prefix
        if not (root / "pyproject.toml").is_file():
            return {}
        output = Path(directory) / "mapped-columns.json"
        result = subprocess.run(
            [sys.executable, "-c", _DUMP, str(output)],
            # `-c` puts the current folder first on sys.path: BASE's package
            # is imported, not the working tree's (installed editable).
            cwd=root,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            raise SystemExit(
                f"Cannot read the models of the running release ({label}) (above):"
                " its app must be importable with this environment's"
                " packages."
            )
        mapped: Mapped = json.loads(output.read_text())
        return mapped


# --- The check ----------------------------------------------------------------


def acknowledgement(table: str, column: str | None = None) -> str:
    """The ACKNOWLEDGED text that accepts a drop the running release meets."""
    if column is None:
        return f"drop table {table} while the running release maps it"
    return f"drop column {table}.{column} while the running release maps it"


def drops(operations: Iterable[Any]) -> Iterable[tuple[str, str | None]]:
    """(table, column) for each drop_column, (table, None) for each drop_table."""
    for op in operations:
        schema = getattr(op, "schema", None)
        if isinstance(op, ops.DropColumnOp | ops.DropTableOp) and isinstance(
            op.table_name, str
        ):
            table = f"{schema}.{op.table_name}" if schema else op.table_name
            if isinstance(op, ops.DropTableOp):
                yield table, None
            elif isinstance(op.column_name, str):
                yield table, op.column_name


def refused_drops(
    revisions: Iterable[tuple[Path, str, Any]], running: Mapping[str, list[str]]
) -> list[str]:
    """A message for each drop in ``revisions`` ((path, id, module)) of a
    column or table that the ``running`` release maps."""
    messages = []
    for path, revision, module in revisions:
        accepted = review.acknowledged(module)
        for table, column in drops(review.upgrade_operations(path, vars(module))):
            if table not in running or acknowledgement(table, column) in accepted:
                continue
            if column is None:
                messages.append(_table_message(path, revision, table))
            elif column in running[table]:
                messages.append(_column_message(path, revision, table, column))
    return messages


def _column_message(path: Path, revision: str, table: str, column: str) -> str:
    return (
        f"{path.name} (revision {revision}) drops {table}.{column}, which the"
        " running release still maps: its instances fail on that table from"
        " the moment this migration runs until the last one is replaced."
        " Take two releases:\n"
        f"  1. This release retires {table}.{column}: put it back in the model,"
        f" unmapped ({column}: Unmapped[... | None] = unmapped_column(...)),"
        " nullable or with a server default; delete this revision and run"
        " `flask db migrate` again (it writes no drop).\n"
        "  2. The next release, once every instance runs this one, removes it"
        " from the model; `flask db migrate` writes the drop.\n"
        "  To accept errors during the deploy instead (the old instances are"
        f' stopped first), add "{acknowledgement(table, column)}" to'
        f" {review.ACKNOWLEDGEMENT} in the revision."
    )


def _table_message(path: Path, revision: str, table: str) -> str:
    return (
        f"{path.name} (revision {revision}) drops table {table}, which the"
        " running release still maps. Take two releases: this one deletes"
        " the model class but keeps the table in the metadata (sa.Table(...,"
        " db.metadata, ...)), the next one removes that. To accept errors"
        f' during the deploy instead, add "{acknowledgement(table)}" to'
        f" {review.ACKNOWLEDGEMENT} in the revision."
    )


def required_retired_columns(db: SQLAlchemy) -> list[str]:
    """A message for each unmapped column that makes the ORM's inserts fail."""
    return [
        f"{column.table.fullname}.{column.name} is retired (not mapped) but NOT"
        " NULL without a default: inserts, which leave it out, fail. Make it"
        " nullable (unmapped_column(..., nullable=True), then `flask db"
        " migrate`) or give it a server_default, in this release."
        for column in retired_columns(db)
        if isinstance(column.table, Table) and inserts_fail(column)
    ]


def added_revisions(merge_base: str) -> list[tuple[Path, str, Any]]:
    """The revisions whose files were added since ``merge_base`` (committed
    or not): (path, revision id, module), oldest first."""
    versions = "migrations/versions"
    added = git("diff", "--name-only", "--relative", "--diff-filter=A", merge_base)
    untracked = git("ls-files", "--others", "--exclude-standard", versions)
    if added is None or untracked is None:
        raise SystemExit("git cannot list the files added since the running release.")
    files = {Path(name).resolve() for name in added + untracked}
    scripts = reversed(list(ScriptDirectory("migrations").walk_revisions()))
    return [
        (Path(s.path), s.revision, s.module)
        for s in scripts
        if Path(s.path).resolve() in files
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(
            "Usage: python -m flask_safe_migrations.running_release BASE\n"
            "BASE: the release running when this change deploys, such as"
            " origin/main or the deployed release's tag.",
            file=sys.stderr,
        )
        return 2
    base = argv[0]
    found = git("merge-base", base, "HEAD")
    if found is None or len(found) != 1:
        print(
            f"git cannot find {base!r} (and its merge base with HEAD) here, so"
            " the running release is unknown. Fetch it (in GitHub Actions:"
            " actions/checkout with fetch-depth: 0) or name another ref.",
            file=sys.stderr,
        )
        return 2
    label = f"{base} at {found[0][:12]}"
    try:
        app = app_of(Path.cwd())
    except ConfigError as exc:  # not run from the project's root
        print(exc.format_message(), file=sys.stderr)
        return 2
    problems = refused_drops(
        added_revisions(found[0]), base_mapped_columns(found[0], label)
    )
    with app.app_context():
        problems += required_retired_columns(app.extensions["sqlalchemy"])
    if problems:
        print(f"The running release is {label}.", file=sys.stderr)
        for problem in problems:
            print(f"- {problem}", file=sys.stderr)
        return 1
    print(f"Nothing the running release ({label}) maps is dropped.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
