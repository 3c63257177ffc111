"""Connect timeouts, so that a database that accepts connections and never
answers costs seconds (DATABASE_CONNECT_TIMEOUT), not minutes.

`flask db upgrade` and the app use the timeout configure() sets (app_setup.py);
`flask db-wait --timeout N` gives each attempt what is left of its N seconds.
"""

import math
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry


def connect_args(url: URL, seconds: float) -> dict[str, Any]:
    """The driver's own connect-timeout arguments for ``url``."""
    driver = url.get_driver_name()
    if driver == "psycopg":
        # libpq's connect_timeout covers the whole handshake; whole seconds,
        # and it treats less than 2 as 2.
        return {"connect_timeout": max(2, math.ceil(seconds))}
    if driver == "pymysql":
        # PyMySQL's connect_timeout covers only the TCP connect; its handshake
        # then waits read_timeout, forever by default. install() clears the
        # read timeout once connected, so long queries and migrations keep none.
        arguments: dict[str, Any] = {"connect_timeout": seconds}
        if "read_timeout" not in url.query:
            arguments["read_timeout"] = seconds
        return arguments
    return {}


def install(engine: Engine) -> None:
    """Clear the handshake read timeout connect_args() gave PyMySQL."""
    if engine.dialect.driver != "pymysql" or "read_timeout" in engine.url.query:
        return

    @event.listens_for(engine, "connect")
    def _clear_read_timeout(
        dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry
    ) -> None:
        # PyMySQL has no public setter; it applies _read_timeout before each read.
        dbapi_connection._read_timeout = None
