"""The Flask extensions, created here unbound and bound to the app in create_app()."""

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.query import Query
from sqlalchemy import Connection, Engine, MetaData, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry

from .config import ConfigError
from .migration_tools import template_files

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
    """What db.Model is built from: the metadata with the naming convention (and a
    type_annotation_map, if you add one). Models subclass Model, not this."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

# The base class of every model: db.Model, with Flask-SQLAlchemy's features
# (Model.query, __bind_key__, table names from class names, joined-table
# inheritance). mypy cannot subclass db.Model, an attribute, so it is shown a class
# with the same typed interface; at run time Model *is* db.Model.
if TYPE_CHECKING:

    class Model(Base):
        __abstract__ = True
        query: ClassVar[Query]

else:
    Model = db.Model

# Batch mode lets SQLite run ALTER-style operations by rebuilding the table (a no-op
# wrapper on other engines), so one script works in development and production.
# compare_type makes autogenerate notice changed column types, which it skips by
# default; migrations/env.py compares server defaults (migration_tools/comparison.py).
migrate = Migrate(directory=MIGRATIONS_DIR, compare_type=True, render_as_batch=True)
# Every `flask db` command first checks that the migrations folder holds the files
# it runs: a deleted env.py is explained in one paragraph, not a traceback.
migrate.configure(template_files.check_migrations_folder)


def init_app(app: Flask) -> None:
    """Bind the extensions to ``app``."""
    _refuse_binds_on_plain_models()
    _give_each_bind_a_database(app)
    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                _make_sqlite_behave(engine)


def _refuse_binds_on_plain_models() -> None:
    """A model that subclasses Base directly (as this template once taught) is not
    a db.Model: Flask-SQLAlchemy ignores its __bind_key__ and its rows would go to
    the main database. Say so rather than write them there."""
    for mapper in Base.registry.mappers:
        cls = mapper.class_
        if "__bind_key__" in vars(cls) and not issubclass(cls, db.Model):
            raise ConfigError(
                f"{cls.__module__}.{cls.__name__} sets __bind_key__ but subclasses"
                " extensions.Base, so Flask-SQLAlchemy ignores the bind and would"
                " use the main database. Subclass extensions.Model instead (only"
                " the base class changes; the table stays the same)."
            )


def _give_each_bind_a_database(app: Flask) -> None:
    """Every bind a model uses needs a URL in SQLALCHEMY_BINDS. In debug mode a
    missing one is a SQLite file in instance/, as a missing DATABASE_URL is."""
    binds = app.config.setdefault("SQLALCHEMY_BINDS", {})
    for key in sorted(key for key in db.metadatas if key is not None):
        if key in binds:
            continue
        if not (app.debug or app.testing):
            raise ConfigError(
                f"The models use the bind {key!r}, which has no database. Set"
                f""" FLASK_SQLALCHEMY_BINDS='{{"{key}": "postgresql://user:"""
                """password@host/dbname"}' (JSON, an entry for each bind)."""
            )
        binds[key] = f"sqlite:///{__name__.split('.')[0]}_{key}.db"


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
