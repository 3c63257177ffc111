"""A unit of work that the database aborted only to break a tie with another
transaction is run again, so that the request does not fail.

A database ends a transaction it cannot order against another, and says to
try again: MySQL/MariaDB error 1213 ("Deadlock found ... try restarting
transaction"), PostgreSQL's deadlock_detected (40P01) and
serialization_failure (40001, in REPEATABLE READ and SERIALIZABLE
transactions), and SQLite's SQLITE_BUSY ("database is locked"), which it
returns at once when waiting would deadlock. Once the transaction is rolled back nothing
of it stays: running the unit of work again from its start is safe, and is
what the databases' manuals prescribe.

A deploy makes one of these in the running release, on MariaDB and SQLite,
however short the migration's own lock wait (timeouts.py): a request that has
read a table in its transaction (`db.session.get(User, id)`) and then writes
it (the commit's UPDATE), while the next release's migration waits to ALTER
that table. The read holds a shared metadata lock until the transaction ends;
the ALTER waits for it; the write asks for a write lock, which queues behind
the waiting ALTER: a deadlock, which MariaDB ends at once by failing the
request's transaction, not the ALTER. SQLite's
equivalent is the request's read lock and the migration's pending write.
PostgreSQL lets a transaction that already holds a lock on the table go ahead
of a waiting ALTER, so it has no deadlock here. No setting on the migration's
side prevents it (it happens as soon as the ALTER starts waiting); retrying
the request does: its second try waits behind the ALTER (an online ALTER
holds its exclusive lock briefly) and succeeds. On MariaDB, a read that locks
the row (SELECT ... FOR UPDATE) also avoids it, by taking the write lock with
the read; retrying covers every read-then-write.

    @bp.post("/users/<int:user_id>")
    @retry_transaction(db.session)
    def rename(user_id: int) -> dict[str, int]:
        user = db.get_or_404(User, user_id)
        user.name = request.form["name"]
        db.session.commit()
        return {"id": user.id}

Only the unit of work's own transaction is retried: one that is open when it
starts belongs to the caller, and rolling it back would lose the caller's
work, so the error is raised as it is. What the function does besides the
database (an e-mail sent, a file written) is done again on a retry: keep it
after the commit.
"""

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, scoped_session

log = logging.getLogger(__name__)

ATTEMPTS = 3  # in all; a deadlock twice in a row is rare, three times a bug
PAUSE_SECONDS = 0.05  # the longest first pause; doubles after each try

# SQLSTATEs (PostgreSQL) and error numbers (MySQL/MariaDB) that ask for the
# transaction to be tried again.
_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
}
_MYSQL_ERRORS = {1213}  # ER_LOCK_DEADLOCK
_SQLITE_BUSY = 5  # the primary result code; extended codes keep it in the low byte

P = ParamSpec("P")
R = TypeVar("R")


def is_transient(exc: BaseException) -> bool:
    """Whether the database aborted the transaction so that it be tried again
    (a deadlock, a serialization failure), rather than refused what it did."""
    if not isinstance(exc, DBAPIError) or exc.connection_invalidated:
        return False
    orig: Any = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _SQLSTATES:
        return True
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF == _SQLITE_BUSY
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _MYSQL_ERRORS


def retry_transaction(
    session: Session | scoped_session[Any], *, attempts: int = ATTEMPTS
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a unit of work (a view, a task) that runs one transaction on
    ``session`` (a Session, or a scoped_session such as Flask-SQLAlchemy's
    ``db.session``): when the database aborts it with a transient error
    (is_transient), roll back ``session``, pause a few milliseconds and call it
    again, up to ``attempts`` calls in all; then raise the last error."""
    if attempts < 1:
        raise ValueError(f"attempts must be 1 or more, not {attempts!r}")

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            current = session() if isinstance(session, scoped_session) else session
            callers = current.in_transaction()
            attempt = 1
            while True:
                try:
                    return function(*args, **kwargs)
                except DBAPIError as exc:
                    if callers or attempt >= attempts or not is_transient(exc):
                        raise
                    current.rollback()
                    # Random, so that two transactions that deadlocked do
                    # not meet again in step.
                    pause = random.uniform(0, PAUSE_SECONDS * 2 ** (attempt - 1))
                    log.warning(
                        "%s: the database aborted the transaction (%s); trying"
                        " again in %.0f ms (try %d of %d).",
                        function.__qualname__,
                        str(exc.orig).strip().splitlines()[0],
                        pause * 1000,
                        attempt + 1,
                        attempts,
                    )
                    time.sleep(pause)
                    attempt += 1

        return run

    return decorate
