"""Which databases the tests may empty.

The test suite drops every table in the databases it is given, so it takes
only a database whose name says it is for tests (it starts with "test_" or
ends with "_test"; for SQLite, the file's name without its extension) and that
is none of the production databases. The name judged is the one the driver
will connect to, read from SQLAlchemy's own translation of the URL into the
driver's arguments (the dialect's create_connect_args), not the URL's path: a
query can override the path (psycopg's ?dbname=, PyMySQL's ?database= and
?db=, SQLite's file: URIs with ?uri=true). Query options that hand the choice
to something the URL does not show (a libpq service file or connection
string, a MySQL option file, SQL run at connect such as `USE prod`) are
refused, as the database cannot be judged from the URL. Before the first
test, check_server() also asks the server which database the connection
landed in (a connection pooler may map a name to another database), and
explains one that cannot be reached.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import URL, NullPool, create_engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

# Query options that let something outside the URL choose the database or the
# server: libpq's service file and a whole connection string (psycopg takes
# one as `conninfo`), MySQL option files, and SQL run on connecting.
REDIRECTING_OPTIONS = {
    "service": "a libpq service file can name another server",
    "conninfo": "a libpq connection string can name another database",
    "read_default_file": "a MySQL option file can name another database",
    "read_default_group": "a MySQL option file can name another database",
    "init_command": "SQL run on connecting can switch to another database",
}
# The driver arguments that name the database, the one a driver uses first:
# psycopg's dbname, PyMySQL's database (it wins over db), MySQLdb's db.
DATABASE_ARGUMENTS = ("dbname", "database", "db")
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
EXAMPLE = "app_test"
# What make_url raises: not a URL, or a port that is not a number.
BAD_URL = (ArgumentError, ValueError)


class Refused(Exception):
    """A test database the tests must not use, or cannot reach: the message
    says why and what to do, in one paragraph, without any password."""


@dataclass(frozen=True)
class Target:
    """The database a URL's driver connects to: ``database`` is its name, or
    for SQLite the file's absolute path ("" in memory)."""

    backend: str
    host: str
    port: str
    database: str

    @property
    def name(self) -> str:
        """What the rule judges: the name, or a SQLite file's name without
        its extension."""
        return Path(self.database).stem if self.backend == "sqlite" else self.database


def is_test_name(name: str) -> bool:
    return name.lower().startswith("test_") or name.lower().endswith("_test")


def check(variable: str, url: str | URL, production: Mapping[str, str]) -> Target:
    """The database ``url`` (from ``variable``) connects to, if the tests may
    empty it: it is named as a test database and is none of ``production``'s
    URLs (variable name -> URL). Else Refused."""
    target = target_of(variable, url)
    if not target.database:
        raise Refused(
            f"{variable} names no database (or an in-memory SQLite one), but the"
            " tests need a database of their own that they may empty. Name one"
            " whose name starts with 'test_' or ends with '_test', such as"
            f" {EXAMPLE}."
        )
    if not is_test_name(target.name):
        raise Refused(
            f"{variable} connects to the database {target.name!r}, but the tests"
            " drop every table in the database they are given. Point it at a"
            " database whose name starts with 'test_' or ends with '_test', such"
            f" as {target.name or 'app'}_test."
        )
    for other, other_url in production.items():
        try:
            same = _same(target_of(other, other_url), target)
        except Refused:
            same = False  # a production URL the app itself will refuse
        if same:
            raise Refused(
                f"{variable} names the same database as {other}, and the tests"
                " drop every table in it. Give the tests a database of their own."
            )
    return target


def target_of(variable: str, url: str | URL) -> Target:
    """Where ``url``'s driver will connect, as SQLAlchemy hands it the URL."""
    try:
        parsed = make_url(url)
    except BAD_URL:
        # SQLAlchemy's message may quote the password: say nothing of it.
        raise Refused(
            f"{variable} is not a database URL. Use the form"
            " postgresql://user:password@host:5432/app_test,"
            " mysql://user:password@host:3306/app_test or sqlite:///app_test.db,"
            " and percent-encode any @, :, / or ? in the user name or password."
        ) from None
    try:
        arguments, options = parsed.get_dialect()().create_connect_args(parsed)
    except (ArgumentError, ValueError, TypeError) as exc:
        # Options the dialect cannot combine (psycopg's two multi-host
        # spellings) or convert (a port that is not a number).
        raise Refused(
            f"{variable} has query options the database driver cannot use"
            f" ({str(exc).splitlines()[0]}). Remove or correct them."
        ) from None
    for option, why in REDIRECTING_OPTIONS.items():
        if option in parsed.query or option in options:
            raise Refused(
                f"{variable} has the option {option}= ({why}), so the tests cannot"
                " tell which database they would empty. Remove it and name the"
                " host, port and database in the URL itself."
            )
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return Target("sqlite", "", "", _sqlite_file(arguments, options))
    backend = "mysql" if backend == "mariadb" else backend
    names = {key: options[key] for key in DATABASE_ARGUMENTS if key in options}
    if any(not isinstance(name, str) for name in names.values()):
        raise Refused(
            f"{variable} gives the database name more than once in its query."
            " Name the database once, in the URL's path."
        )
    database = next(iter(names.values()), "")  # the one the driver uses
    for key, name in names.items():
        # A second name (PyMySQL's db= beside database=): drivers differ in
        # which they read, so it must pass the rule too.
        if is_test_name(database) and not is_test_name(name):
            raise Refused(
                f"{variable} names two databases, {database!r} and {name!r} (its"
                f" {key}= option), and a driver may connect to either. Name the"
                " database once, in the URL's path."
            )
    host = options.get("hostaddr") or options.get("host") or ""
    port = options.get("port") or DEFAULT_PORTS.get(backend, "")
    return Target(backend, _host(str(host)), str(port), database)


def _sqlite_file(arguments: Sequence[Any], options: Mapping[str, Any]) -> str:
    """The file SQLite opens ("" in memory).

    pysqlite hands SQLite a file: URI when the URL has ?uri=true; no library
    function reads one, so it is read here as SQLite documents them (a path,
    percent-encoded, then ?options and #fragment; mode=memory is in memory).
    """
    filename = str(arguments[0]) if arguments else ""
    if options.get("uri") and filename.startswith("file:"):
        uri = urlsplit(filename)
        if "memory" in parse_qs(uri.query).get("mode", []):
            return ""
        filename = unquote(uri.path)
    if filename in ("", ":memory:"):
        return ""
    return str(Path(filename).resolve())


def _host(host: str) -> str:
    """One spelling for this machine (a socket directory is this machine too)."""
    host = host.lower()
    return "localhost" if host in LOCAL_HOSTS or host.startswith("/") else host


def _same(one: Target, other: Target) -> bool:
    if one.backend != other.backend or not one.database:
        return False
    if one.backend == "sqlite":
        return one.database == other.database
    return (one.host, one.port, one.database.lower()) == (
        other.host,
        other.port,
        other.database.lower(),
    )


def bind_urls(variable: str, value: str | None, keys: Iterable[str]) -> dict[str, str]:
    """The URL for each bind in ``keys`` from ``variable``'s JSON ``value``."""
    keys = list(keys)
    example = json.dumps({key: f"<URL of {key}_test>" for key in keys or ["analytics"]})
    fix = f"Set it to a JSON object naming a test database for each bind: '{example}'."
    try:
        urls = json.loads(value or "{}")
    except json.JSONDecodeError as exc:
        # The error names a position, never the text (it may hold a password).
        raise Refused(f"{variable} is not valid JSON ({exc}). {fix}") from None
    if not isinstance(urls, dict):
        raise Refused(f"{variable} is JSON but not an object. {fix}")
    for key, url in urls.items():
        if not isinstance(url, str):
            raise Refused(
                f"{variable}[{key!r}] is {_json_kind(url)}, not a URL string. {fix}"
            )
    for key in keys:
        if key not in urls:
            raise Refused(
                f"The models use the bind {key!r}, and TEST_DATABASE_URL is set,"
                f" but {variable} names no test database for {key!r}. {fix}"
            )
    return {key: urls[key] for key in keys}


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "an array" if isinstance(value, list) else "an object"


def check_server(
    variable: str, url: str | URL, connect_args: Mapping[str, Any]
) -> None:
    """Connect to ``url`` once: Refused, in one paragraph, if that fails, or
    if the server put the connection in a database the tests may not empty."""
    parsed = make_url(url)
    try:
        engine = create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    except ImportError as exc:
        raise Refused(
            f"{variable} needs the database driver {exc.name or parsed.drivername!r},"
            " which is not installed. Add it to the project's dependencies, or use"
            " the project's own database."
        ) from None
    try:
        with engine.connect() as connection:
            name = _current_database(connection)
    except DBAPIError as exc:
        raise Refused(_unreachable(variable, parsed, exc)) from None
    finally:
        engine.dispose()
    if not is_test_name(
        Path(name).stem if parsed.get_backend_name() == "sqlite" else name
    ):
        raise Refused(
            f"{variable} names a test database, but the server put the connection"
            f" in the database {name!r} (a connection pooler's alias, or a setting"
            " outside the URL), and the tests drop every table in it. Point it at"
            " a database whose name starts with 'test_' or ends with '_test'"
            " that the server does not redirect."
        )


def _current_database(connection: Any) -> str:
    backend = connection.dialect.name
    if backend == "sqlite":
        rows = connection.exec_driver_sql("PRAGMA database_list").all()
        return next((str(row[2]) for row in rows if row[1] == "main"), "")
    if backend == "postgresql":
        query = "SELECT current_database()"
    else:
        query = "SELECT DATABASE()"
    return str(connection.exec_driver_sql(query).scalar() or "")


def _unreachable(variable: str, url: URL, exc: DBAPIError) -> str:
    """The server's own reason, and the fix (the drivers' messages hold no
    password)."""
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    # PyMySQL's errors are (code, message); psycopg's a message.
    code, reason = args if len(args) == 2 else (None, str(exc.orig))
    reason = " ".join(str(reason).strip().splitlines()[0].split()).rstrip(".")
    target = target_of(variable, url)
    if target.backend == "sqlite":
        return (
            f"Cannot open the SQLite file {target.database!r} that {variable}"
            f" names: {reason}. Check that its directory exists and is writable."
        )
    where = f"on {url.host or target.host}:{target.port}"
    # PostgreSQL's message, in English (lc_messages); MySQL's error number.
    if code == 1049 or f'database "{target.database}" does not exist' in reason:
        if target.backend == "postgresql":
            create = " ".join(
                ["createdb"]
                + ([f"-h {url.host}"] if url.host else [])
                + ([f"-p {url.port}"] if url.port else [])
                + ([f"-U {url.username}"] if url.username else [])
                + [target.database]
            )
        else:
            create = f"CREATE DATABASE {target.database};"
        return (
            f"{variable} names the database {target.database!r} {where}, which"
            f" does not exist (the server says: {reason}). Create it ({create})"
            " and run the tests again: they build its tables from the migrations."
        )
    return (
        f"Cannot connect to the database {target.database!r} {where} that"
        f" {variable} names: {reason}. Check {variable} (host, port, user,"
        " password and database name) and that the server is running and accepts"
        " connections from this machine."
    )
