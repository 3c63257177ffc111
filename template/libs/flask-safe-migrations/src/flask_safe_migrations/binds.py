"""Several databases: Flask-SQLAlchemy's binds, each migrated in its own database
(with its own alembic_version table).

One history serves them all. A revision's upgrade() and downgrade() migrate the
main database; upgrade_<bind>() and downgrade_<bind>() migrate the bind <bind>
(script.py.mako writes them once a model uses a bind). A revision without them,
such as every revision written before the bind existed, leaves that database
alone: adding a bind never replays the main database's history on it.
"""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from alembic.runtime.migration import MigrationContext, MigrationStep, RevisionStep
from alembic.util import CommandError
from flask_sqlalchemy import SQLAlchemy

# Alembic's work function: given the database's heads, the steps to run.
Work = Callable[[Any, MigrationContext], Iterable[MigrationStep]]


def databases(db: SQLAlchemy) -> list[str | None]:
    """The databases to migrate: the main one (None), then each bind that a
    model uses (__bind_key__), in name order. A bind no model uses is a
    database the app reads but does not describe: migrations leave it alone."""
    binds = sorted(
        key for key, metadata in db.metadatas.items() if key and metadata.tables
    )
    for key in binds:
        if not key.isidentifier():
            raise CommandError(
                f"The bind key {key!r} is not a Python identifier, so its"
                f" migrations cannot be written as upgrade_{key}(). Rename it,"
                " in __bind_key__ and SQLALCHEMY_BINDS, to letters, digits and"
                " underscores."
            )
    return [None, *binds]


def options(bind: str, configured: MigrationContext) -> dict[str, Any]:
    """Options for Alembic's context.configure() that migrate ``bind``.
    ``configured`` is a context already configured for it, which holds the
    command's work function (the revisions to run)."""
    work = configured.opts["fn"]
    work = getattr(work, "__wrapped__", work)  # the original, not a bind's
    return {
        "upgrade_token": f"{bind}_upgrades",
        "downgrade_token": f"{bind}_downgrades",
        # Alembic has no option to choose which function of a revision runs:
        # it calls RevisionStep.migration_fn, so the steps are adjusted here.
        "fn": _steps_for(bind, work),
    }


def _steps_for(bind: str, work: Work) -> Work:
    def steps(heads: Any, context: MigrationContext) -> Iterator[MigrationStep]:
        for step in work(heads, context):
            if isinstance(step, RevisionStep):
                name = f"{'upgrade' if step.is_upgrade else 'downgrade'}_{bind}"
                step.migration_fn = getattr(step.revision.module, name, None) or (
                    _nothing(name)
                )
            yield step

    steps.__wrapped__ = work  # type: ignore[attr-defined]
    return steps


def _nothing(name: str) -> Callable[[], None]:
    def nothing() -> None:
        """The revision does not change this database."""

    nothing.__name__ = f"{name} (none in this revision)"
    return nothing
