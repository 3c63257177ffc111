"""The Flask extensions, created here unbound and bound to the app in create_app()."""

from pathlib import Path

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Connection, Engine, MetaData, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry

# Every constraint and index gets a predictable name, the same on every database
# engine. Alembic needs a name to drop or alter a constraint later, and SQLite's
# batch mode cannot rebuild a table whose constraints have no name. CHECK
# constraints must be named explicitly: CheckConstraint(..., name="positive_price").
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The migrations folder sits next to this package, so `flask db ...` finds it from
# any working directory.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class Base(DeclarativeBase):
    """The base class of every model; its metadata carries the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

# Batch mode lets SQLite run ALTER-style operations by rebuilding the table (a no-op
# wrapper on other engines), so one script works in development and production.
# compare_type and compare_server_default make autogenerate notice changed column
# types and server defaults, which it skips by default.
migrate = Migrate(
    directory=MIGRATIONS_DIR,
    compare_type=True,
    render_as_batch=True,
    compare_server_default=True,
)


def init_app(app: Flask) -> None:
    """Bind the extensions to ``app``."""
    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                _make_sqlite_behave(engine)


def _make_sqlite_behave(engine: Engine) -> None:
    """Give SQLite the transaction and foreign-key behaviour of the server engines.

    Python's sqlite3 driver starts transactions late and never for DDL, which breaks
    SAVEPOINTs (and so the tests' per-test rollback) and makes migrations
    non-atomic. This is SQLAlchemy's documented fix: let SQLAlchemy emit BEGIN.
    SQLite also ignores foreign keys unless asked, so an orphan row would pass in
    development and fail in production.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")
