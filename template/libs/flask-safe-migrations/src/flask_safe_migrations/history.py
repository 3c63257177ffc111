"""Errors of the revision history, explained in one paragraph by every `flask db`
command: a database at a revision this code does not have (a newer release
migrated it), a revision asked for that does not exist, and a relative
downgrade from a merge point, where Alembic cannot choose a branch.

Alembic reports them as "Can't locate revision identified by '...'" and
"Ambiguous walk", which name neither the cause nor the fix.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError, RevisionError
from alembic.util import CommandError


@contextmanager
def explained(script: ScriptDirectory, context: MigrationContext) -> Iterator[None]:
    """Turn the history errors raised meanwhile into one-paragraph messages
    (``context``: the migration context, whose database is asked where it is)."""
    try:
        yield
    except (CommandError, RevisionError) as exc:
        # Alembic's script directory re-raises its RevisionErrors as
        # CommandErrors, the original as the cause.
        error = exc.__cause__ if isinstance(exc, CommandError) else exc
        if isinstance(error, ResolutionError):
            current = context.get_current_heads()
            message = _unknown_revision(error.argument, script, current)
        elif isinstance(error, RevisionError) and str(error) == "Ambiguous walk":
            message = _ambiguous_walk(script, context.get_current_heads())
        else:
            raise
        raise CommandError(message) from None


def newer_database(current: Iterable[str]) -> str:
    """What it means that the database is at revisions this code lacks (also
    said by `flask db-status`)."""
    return (
        f"The database is at revision {', '.join(sorted(current))}, which this"
        " code does not have: a newer release has migrated it (a rollback, or"
        " an old instance during a rolling deploy)."
    )


def way_back(heads: str) -> str:
    """How to take such a database back to this code's ``heads``."""
    return (
        f"To take the database back to this release, run `flask db downgrade"
        f" {heads}` with the newer release's code."
    )


def _unknown_revision(
    argument: str, script: ScriptDirectory, current: tuple[str, ...]
) -> str:
    heads = " ".join(sorted(script.get_heads())) or "base"
    if argument in current or not argument:
        return (
            f"{newer_database(current)} Run this command with the newer"
            f" release's code. {way_back(heads)} `flask db-status` says the"
            " same, and lets this release serve meanwhile."
        )
    return (
        f"There is no revision {argument!r} in migrations/versions. `flask db"
        " history` lists the revisions (a unique prefix of an id works too),"
        f" and the newest is {heads}."
    )


def _ambiguous_walk(script: ScriptDirectory, current: tuple[str, ...]) -> str:
    merges = [
        revision
        for revision in script.get_revisions(current)
        if revision is not None and revision.is_merge_point
    ]
    if not merges:
        return (
            "Alembic cannot choose a path through the history: two branches meet"
            " on the way. Name the revision to go to, as `flask db history`"
            " shows it, instead of a relative step such as -1."
        )
    merge = merges[0]
    parents = sorted(_tuple(merge.down_revision))
    return (
        f"The database is at the merge revision {merge.revision}, which joins"
        f" {', '.join(parents)}: a relative step back (`flask db downgrade`,"
        " -1) does not say which branch to step back on. Name the revision to"
        f" go back to: `flask db downgrade {parents[0]}` undoes the merge alone"
        " and leaves every branch applied; naming a revision from before the"
        " branches forked undoes them too (`flask db history` shows them)."
    )


def _tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
