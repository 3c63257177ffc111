"""Reuse the test databases between test runs (like Django's --keepdb).

Building the test schema runs every migration, so a test run's start-up grows
with the history. Instead the tests keep their databases, and record, in
pytest's cache, what built them: a hash of each revision file and one of the
machinery that runs them (migrations/env.py, alembic.ini, script.py.mako,
migration_tools/, migration_settings.py). The next run reuses them when

- the record is there: the last run ended normally, leaving them at the
  newest revisions (a run is marked unfinished as it starts);
- every revision it applied is unchanged, and the machinery is too;
- the databases are at the revisions the record names.

Then only the new revisions are applied. Anything else builds them from empty,
as `pytest --fresh-db` (or `-p no:cacheprovider`) always does.
"""

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

# A record: {"machinery": hash, "revisions": {id: hash}, "heads": {bind: [ids]}}.
Record = dict[str, Any]


def _digest(*paths: Path) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.name.encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


def machinery_hash(migrations: Path, package: Path) -> str:
    """A hash of what runs the revisions."""
    files = [
        path
        for path in (
            migrations / "env.py",
            migrations / "alembic.ini",
            migrations / "script.py.mako",
            package / "migration_settings.py",
        )
        if path.exists()
    ]
    files += sorted((package / "migration_tools").glob("*.py"))
    return _digest(*files)


def revision_hashes(script: ScriptDirectory) -> dict[str, str]:
    """A hash of each revision file, by revision id."""
    return {
        revision.revision: _digest(Path(revision.path))
        for revision in script.walk_revisions()
        if revision.path
    }


def cache_key(engines: Mapping[str | None, Engine]) -> str:
    """Where pytest's cache keeps the record of these databases (their URLs,
    without passwords)."""
    urls = "\n".join(f"{bind}={engine.url}" for bind, engine in engines.items())
    return "test-db/" + hashlib.sha256(urls.encode()).hexdigest()[:16]


def current_heads(engines: Mapping[str | None, Engine]) -> dict[str, list[str]]:
    """The revisions each database is at ("" for the main one)."""
    heads = {}
    for bind, engine in engines.items():
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
        heads[bind or ""] = sorted(current)
    return heads


def make_record(
    machinery: str, script: ScriptDirectory, engines: Mapping[str | None, Engine]
) -> Record:
    """What built the databases, now that they are at the newest revisions."""
    return {
        "machinery": machinery,
        "revisions": revision_hashes(script),
        "heads": current_heads(engines),
    }


def why_not_reusable(
    record: Record | None,
    machinery: str,
    script: ScriptDirectory,
    engines: Mapping[str | None, Engine],
) -> str | None:
    """None if the databases ``record`` describes can be upgraded in place,
    else why not."""
    if not isinstance(record, dict):
        return "no record of a finished run"
    if record.get("machinery") != machinery:
        return "migrations/env.py or migration_tools/ changed"
    now = revision_hashes(script)
    applied = record.get("revisions")
    if not isinstance(applied, dict):
        return "no record of a finished run"
    for revision, digest in applied.items():
        if revision not in now:
            return f"revision {revision} is gone"
        if now[revision] != digest:
            return f"revision {revision} changed"
    try:
        heads = current_heads(engines)
    except SQLAlchemyError:  # unreachable, or not a database of ours
        return "the databases could not be read"
    if heads != record.get("heads"):
        return "the databases are not where the last run left them"
    return None
