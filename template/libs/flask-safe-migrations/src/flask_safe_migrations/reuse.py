"""Reuse the test databases between test runs (like Django's --keepdb).

Building the test schema runs every migration, so a test run's start-up grows
with the history. Instead the tests keep their databases, and record, in
pytest's cache, what built them: a hash of each revision file and one of the
machinery that runs them (migrations/env.py, alembic.ini, script.py.mako,
flask-safe-migrations, migration_settings.py). The next run reuses them when

- the record is there: the last run ended normally, leaving them at the
  newest revisions (a run is marked unfinished as it starts);
- every revision it applied is unchanged, and the machinery is too;
- the databases are at the revisions the record names.

Then only the new revisions are applied. Anything else builds them from empty,
as `pytest --fresh-db` (or `-p no:cacheprovider`) always does.

The migration tests' proofs are kept the same way (Proofs): a revision that
walked up and down with rows, on these databases, with the same machinery and
the same tests, and whose every earlier revision is unchanged (its chain
hash), is not walked again by a local run. CI and `--fresh-db` prove it all.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import alembic
import sqlalchemy
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
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


def machinery_hash(migrations: Path, settings: Path) -> str:
    """A hash of what runs the revisions: the migrations folder's files, the
    project's migration settings and this library."""
    files = [
        path
        for path in (
            migrations / "env.py",
            migrations / "alembic.ini",
            migrations / "script.py.mako",
            settings,
        )
        if path.exists()
    ]
    files += sorted(Path(__file__).parent.glob("*.py"))
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
        return "migrations/env.py or flask-safe-migrations changed"
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


def chain_hashes(script: ScriptDirectory) -> dict[str, str]:
    """A hash of each revision together with every revision it builds on, by
    revision id: it changes when the revision or any earlier one changes."""
    files = revision_hashes(script)
    chains: dict[str, str] = {}
    for revision in reversed(list(script.walk_revisions())):  # each after its own
        sha = hashlib.sha256(files.get(revision.revision, "").encode())
        for parent in sorted(_parents(revision)):
            sha.update(chains.get(parent, parent).encode())
        chains[revision.revision] = sha.hexdigest()
    return chains


def _parents(revision: Script) -> tuple[str, ...]:
    down = revision.down_revision
    return (down,) if isinstance(down, str) else tuple(down or ())


def proof_context(
    machinery: str, tests: Iterable[Path], engines: Mapping[str | None, Engine]
) -> str:
    """What a proof of the migration tests also depends on: the machinery, the
    tests themselves, the libraries and each database server's version."""
    servers = []
    for bind, engine in engines.items():
        with engine.connect() as connection:
            version = connection.dialect.server_version_info
        servers.append(f"{bind}={engine.dialect.name}{version}")
    existing = [path for path in tests if path.exists()]
    return hashlib.sha256(
        "\n".join(
            [
                machinery,
                _digest(*existing),
                f"alembic {alembic.__version__}",
                f"sqlalchemy {sqlalchemy.__version__}",
                *servers,
            ]
        ).encode()
    ).hexdigest()


@dataclass
class Proofs:
    """What earlier runs of the migration tests proved on these databases
    (chain hashes, valid while ``context`` is unchanged), and what this run
    adds; ``record()`` is what the next run loads."""

    context: str
    chains: dict[str, str]
    walked: set[str] = field(default_factory=set)
    from_empty: str | None = None  # the heads_key() of the history it proved

    @classmethod
    def load(cls, record: Any, context: str, chains: dict[str, str]) -> Self:
        proofs = cls(context, chains)
        if isinstance(record, dict) and record.get("context") == context:
            current = set(chains.values())
            proofs.walked = current & set(record.get("walked") or ())
            proofs.from_empty = record.get("from_empty")
        return proofs

    def heads_key(self) -> str:
        """The chain hashes of the whole history, as one."""
        return hashlib.sha256(
            " ".join(sorted(self.chains.values())).encode()
        ).hexdigest()

    def to_walk(self, in_order: list[Script], heads: tuple[str, ...]) -> list[Script]:
        """The revisions (``in_order``: base first) whose walk is not proven,
        the newest ones, which every run walks, and every revision that
        builds on one of them."""
        chosen: set[str] = set()
        for revision in in_order:
            if (
                revision.revision in heads
                or self.chains[revision.revision] not in self.walked
                or chosen.intersection(_parents(revision))
            ):
                chosen.add(revision.revision)
        return [revision for revision in in_order if revision.revision in chosen]

    def proved_walk(self, revisions: Iterable[Script]) -> None:
        self.walked |= {self.chains[revision.revision] for revision in revisions}

    def upgrade_from_empty_proven(self) -> bool:
        return self.from_empty == self.heads_key()

    def proved_upgrade_from_empty(self) -> None:
        self.from_empty = self.heads_key()

    def record(self) -> Record:
        return {
            "context": self.context,
            "walked": sorted(self.walked),
            "from_empty": self.from_empty,
        }
