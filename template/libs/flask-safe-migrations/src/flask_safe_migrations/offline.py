"""`flask db upgrade --sql`: the SQL of the migrations, for a DBA to apply."""

from alembic.util import CommandError
from sqlalchemy import URL

SQLITE_OFFLINE = (
    "`flask db upgrade --sql` cannot write SQL for SQLite. Most changes to a"
    " SQLite table go through batch mode, which rebuilds the table from its"
    " current definition, read from the live database; offline there is no"
    " database to read. Run `flask db upgrade` against the database itself (or"
    " a copy of it, then ship the file), or print the SQL for a server engine"
    " by pointing DATABASE_URL at one: the SQL is written without connecting."
)


def refuse_sqlite(url: URL) -> None:
    """Explain, in place of Alembic's batch-mode error, why SQLite has no --sql."""
    if url.get_backend_name() == "sqlite":
        raise CommandError(SQLITE_OFFLINE)
