"""Database errors a migration meets, explained in one paragraph: a database
that cannot be reached, and a user without the rights to change the schema."""

from sqlalchemy import URL
from sqlalchemy.exc import DBAPIError

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def describe_connection_error(exc: DBAPIError, url: URL) -> str:
    """Name the database, where it is, and why connecting failed (no password)."""
    args: tuple[object, ...] = getattr(exc.orig, "args", ())
    # PyMySQL's errors are (code, message) pairs; psycopg's a message.
    reason = args[1] if len(args) == 2 and isinstance(args[1], str) else str(exc.orig)
    reason = reason.strip().splitlines()[0].rstrip(".")
    if url.get_backend_name() == "sqlite":
        where = f"the SQLite file {url.database!r}"
    else:
        where = f"database {url.database!r} {_location(url)}"
    return (
        f"Cannot connect to {where}: {reason}. Check"
        " DATABASE_URL (host, port, user, password and database name) and that"
        " the server is running and accepts connections from this machine."
    )


def _location(url: URL) -> str:
    """Where the server is and who connects: "on host:port as 'user'"."""
    socket = url.query.get("host") or url.query.get("unix_socket")
    if url.host:
        port = url.port or DEFAULT_PORTS.get(url.get_backend_name()) or ""
        place = f"on {url.host}:{port}"
    elif socket:
        place = f"through the socket {socket!r}"
    else:
        place = "through the default local socket"
    who = f"as {url.username!r}" if url.username else "as the current system user"
    return f"{place} {who}"


# PostgreSQL's SQLSTATE for insufficient privilege; MySQL's "command denied".
_PERMISSION_CODES = {"42501", 1142, 1044, 1227}


def is_permission_error(exc: DBAPIError) -> bool:
    # psycopg: sqlstate; PyMySQL: the error number first in args (its sqlstate
    # is a generic 42000).
    sqlstate = getattr(exc.orig, "sqlstate", None)
    number = next(iter(getattr(exc.orig, "args", ())), None)
    return sqlstate in _PERMISSION_CODES or number in _PERMISSION_CODES


def describe_permission_error(exc: DBAPIError, url: URL) -> str:
    """The migration needs rights the database user lacks: say which to grant."""
    reason = str(getattr(exc.orig, "args", ("",))[-1] or exc.orig)
    reason = reason.strip().splitlines()[0].rstrip(".")
    user = url.username or "the current system user"
    return (
        f"The database user {user!r} may not change the schema of database"
        f" {url.database!r}: {reason}. Migrations create and alter tables: grant"
        " that user the rights (PostgreSQL: GRANT CREATE ON SCHEMA public TO"
        " the user, or make it the database's owner; MySQL/MariaDB: GRANT ALL"
        " ON the database's tables), or run `flask db upgrade` with a"
        " DATABASE_URL whose user has them."
    )
