"""The Flask extensions, created here unbound and bound to the app in create_app().

From the project template: `copier update` merges its changes into your
edits (README.md, "Layout").
"""

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import flask_safe_migrations
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.query import Query
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

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
# default; migrations/env.py also compares server defaults.
migrate = Migrate(directory=MIGRATIONS_DIR, compare_type=True, render_as_batch=True)


def init_app(app: Flask) -> None:
    """Bind the extensions to ``app``; add yours here.

    flask_safe_migrations.init_app binds db and migrate, gives SQLite the
    transaction and foreign-key behaviour of PostgreSQL and MySQL, and explains a
    missing database driver or a bad setting in one paragraph.
    """
    flask_safe_migrations.init_app(app, db, migrate)
