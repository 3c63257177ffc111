"""Filling a column of a big table from a revision, without holding up the app.

One UPDATE of a big table holds the row locks it takes until it commits, so
every app request that writes one of those rows waits for the whole UPDATE,
and it keeps the database busy for as long as it runs. backfill() updates a
bounded batch of rows at a time, each batch committed on its own (Alembic's
autocommit_block), and after each batch pauses for as long as the batch took
(pause=1.0): the app's requests then wait at most one batch for a row, and
the backfill takes at most half of one connection's time on the server, leaving
the rest to the app, at the price of a backfill that takes about twice as long.
Each batch gets the migration's lock and statement timeouts (timeouts.py), so
a batch blocked by a long transaction gives up, and is retried, instead of
holding its rows for as long as the other transaction lasts.

Batches walk the table's key in order, so a row the update leaves matching
``where`` (a NULL it copies from a NULL) never makes it loop. Each UPDATE
repeats ``where``: a row the app filled after its batch was selected keeps the
app's value. With `flask db upgrade --sql` it prints one UPDATE, as offline
there are no rows to loop on.

Written here rather than left to a loop in every revision: Alembic has no
batched update (op.execute runs one statement), and each hand-written copy
was one more place to forget the pause, the key order or the offline case.
"""

import logging
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from .timeouts import batch_transaction

log = logging.getLogger("alembic.env")

PROGRESS_SECONDS = 10.0  # how often a long backfill says how far it got


def backfill(
    table: sa.TableClause,
    values: Mapping[str, Any],
    where: sa.ColumnElement[bool],
    *,
    key: str = "id",
    batch: int = 1000,
    pause: float = 1.0,
) -> int:
    """Update ``table`` with ``values`` where ``where`` holds, ``batch`` rows at a
    time, each batch committed, pausing ``pause`` times a batch's duration after
    it; returns the number of rows updated (0 with ``--sql``).

    ``table`` is an ``sa.table(...)`` naming the columns used, ``key`` one of
    them that is unique and never NULL (the primary key). Call it from a
    revision's upgrade() or downgrade(), in a revision of its own: its batches
    commit as they go, so the revision's other operations would not be undone
    with them.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(
            f"backfill(batch={batch!r}): give a whole number of rows, 1 or more."
        )
    if not isinstance(pause, int | float) or pause < 0:
        raise ValueError(
            f"backfill(pause={pause!r}): give a factor of 0 or more"
            " (1.0 pauses as long as each batch took; 0 does not pause)."
        )
    column = table.c.get(key)
    if column is None:
        named = ", ".join(f"sa.column({c.name!r})" for c in table.c)
        raise ValueError(
            f"backfill(): {table.name} has no column {key!r} among {named}: add"
            f" sa.column({key!r}) to its sa.table(...), or name its primary key"
            " with key=..."
        )
    update = table.update().values(dict(values)).where(where)
    if context.is_offline_mode():
        op.execute(update)
        return 0
    bind = op.get_bind()
    done, last = 0, None
    started = reported = time.monotonic()
    with op.get_context().autocommit_block():  # each batch commits
        while True:
            begun = time.monotonic()
            query = sa.select(column).where(where)
            if last is not None:
                query = query.where(column > last)
            with batch_transaction(bind):  # the migration's timeouts
                keys = list(bind.execute(query.order_by(column).limit(batch)).scalars())
                if not keys:
                    break
                # rowcount: the rows matched, on every driver the project uses
                # (PyMySQL's connections ask for found rows, not changed ones).
                done += bind.execute(update.where(column.in_(keys))).rowcount
            last = keys[-1]
            now = time.monotonic()
            if now - reported >= PROGRESS_SECONDS:
                log.info("Backfilling %s: %d rows so far.", table.name, done)
                reported = now
            if len(keys) < batch:
                break  # the last batch: no more rows to leave time between
            time.sleep((now - begun) * pause)
    log.info(
        "Backfilled %d rows of %s in %.1f s.",
        done,
        table.name,
        time.monotonic() - started,
    )
    return done
