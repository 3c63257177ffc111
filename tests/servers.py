"""The database servers the template's tests run against, and throw-away
databases on them.

Each server's admin URL comes from an environment variable, with the defaults
of the development and CI machines:

    TEMPLATE_TEST_POSTGRESQL_URL  postgresql://postgres@127.0.0.1:5432/postgres
    TEMPLATE_TEST_MYSQL_URL       mysql://root@127.0.0.1:3306/mysql

A test database is created per test and dropped after it. An unreachable server
skips its tests, except under CI=true or `pytest --require-databases`, where
it fails them.
"""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url


@dataclass(frozen=True)
class Server:
    engine: str  # the template's `database` answer
    variable: str
    default_url: str
    driver: str
    start_command: str

    @property
    def admin_url(self) -> URL:
        url = make_url(os.environ.get(self.variable) or self.default_url)
        return url.set(drivername=f"{url.get_backend_name()}+{self.driver}")

    def connect_error(self) -> str | None:
        """None when the server answers, else why it does not."""
        try:
            engine = sa.create_engine(
                self.admin_url, connect_args={"connect_timeout": 5}
            )
            with engine.connect():
                pass
            engine.dispose()
        except sa.exc.DBAPIError as exc:
            return str(exc.orig).strip().splitlines()[0]
        return None

    @contextmanager
    def database(self) -> Iterator[str]:
        """A new, empty database; yields its URL in the plain form a user would
        write (postgresql://, mysql://) and drops it afterwards."""
        name = f"tpl_{secrets.token_hex(4)}_test"
        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield self.admin_url.set(
                drivername=self.admin_url.get_backend_name(), database=name
            ).render_as_string(hide_password=False)
        finally:
            force = " WITH (FORCE)" if self.engine == "postgresql" else ""
            with admin.connect() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
            admin.dispose()


SERVERS = {
    server.engine: server
    for server in (
        Server(
            engine="postgresql",
            variable="TEMPLATE_TEST_POSTGRESQL_URL",
            default_url="postgresql://postgres@127.0.0.1:5432/postgres",
            driver="psycopg",
            start_command=(
                "pg_ctlcluster --skip-systemctl-redirect"
                " $(ls /etc/postgresql) main start"
            ),
        ),
        Server(
            engine="mysql",
            variable="TEMPLATE_TEST_MYSQL_URL",
            default_url="mysql://root@127.0.0.1:3306/mysql",
            driver="pymysql",
            start_command=(
                "start-stop-daemon --start --oknodo --background"
                " --exec /usr/sbin/mariadbd"
            ),
        ),
    )
}


def engine(url: str) -> sa.Engine:
    """An engine for a test database URL, with the template env's drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    return sa.create_engine(
        parsed.set(drivername=f"{backend}+{SERVERS[backend].driver}")
    )
