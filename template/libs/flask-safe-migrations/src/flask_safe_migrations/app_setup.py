"""The app's side: settings read from the environment and checked
(configure), and the database extensions made safe (init_app).

The project's config.py calls configure() and extensions.py calls init_app();
each setting is parsed by environment.py, whose message for a bad value names
the variable and the fix.
"""

import math
import os
from collections.abc import Mapping
from typing import Any, cast

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry

from . import connect_timeout, template_files
from .environment import (
    ConfigError,
    binds,
    database_url,
    engine_options,
    flag,
    seconds,
    text,
    whole_number,
)

_PLACEHOLDER_SECRET_KEYS = {"dev", "change-me", "changeme", "secret", "secret-key"}
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_BITS = 128
DEFAULT_CONNECT_TIMEOUT = 10.0
_GENERATE_SECRET_KEY = "python -c 'import secrets; print(secrets.token_hex(32))'"


def configure(
    app: Flask,
    overrides: Mapping[str, Any] | None = None,
    *,
    default_database_url: str,
    production_url_example: str | None,
) -> None:
    """Load settings into ``app.config``: defaults, environment, then ``overrides``.

    ``default_database_url`` is the database without DATABASE_URL (a SQLite
    file in instance/); outside debug and testing it is refused unless
    ``production_url_example`` is None (a SQLite project), and the message
    shows that example.
    """
    overrides = overrides or {}
    app.config["SQLALCHEMY_DATABASE_URI"] = default_database_url
    # Test each pooled connection before use: a database restart or an idle
    # timeout then costs a reconnect, not a failed request.
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    # Session cookies: never readable from JavaScript, not sent on cross-site
    # POSTs, and (outside debug and testing, below) only sent over HTTPS.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config.from_prefixed_env()
    for variable, key in (
        ("DATABASE_URL", "SQLALCHEMY_DATABASE_URI"),
        # Raw strings: from_prefixed_env reads FLASK_SECRET_KEY=123 as a number.
        ("FLASK_SECRET_KEY", "SECRET_KEY"),
        ("SECRET_KEY", "SECRET_KEY"),
    ):
        value = text(variable, os.environ.get(variable))
        if value is not None:
            app.config[key] = value
    app.config.from_mapping(overrides)

    # from_prefixed_env keeps FLASK_DEBUG=False as the (truthy) string
    # "False": parsed here, no spelling of false turns on debug mode and skips
    # the production checks, whoever starts the app (gunicorn too).
    app.config["DEBUG"] = flag("FLASK_DEBUG", app.config.get("DEBUG"))
    app.config["TESTING"] = flag("FLASK_TESTING", app.config.get("TESTING"))
    development = app.debug or app.testing
    app.config["SESSION_COOKIE_SECURE"] = flag(
        "FLASK_SESSION_COOKIE_SECURE",
        app.config["SESSION_COOKIE_SECURE"]
        if "SESSION_COOKIE_SECURE" in overrides
        or "FLASK_SESSION_COOKIE_SECURE" in os.environ
        else not development,
    )
    app.config["TRUSTED_PROXIES"] = whole_number(
        "TRUSTED_PROXIES",
        overrides.get("TRUSTED_PROXIES", os.environ.get("TRUSTED_PROXIES")),
        default=0,
        maximum=20,
    )
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    for variable, parse in (
        ("FLASK_SQLALCHEMY_BINDS", binds),
        ("FLASK_SQLALCHEMY_ENGINE_OPTIONS", engine_options),
    ):
        key = variable.removeprefix("FLASK_")
        # The JSON as given: from_prefixed_env keeps text that is not JSON.
        raw = None if key in overrides else os.environ.get(variable)
        app.config[key] = parse(variable, app.config.get(key) if raw is None else raw)
    add_connect_timeout(
        app.config,
        seconds(
            "DATABASE_CONNECT_TIMEOUT",
            os.environ.get("DATABASE_CONNECT_TIMEOUT"),
            default=DEFAULT_CONNECT_TIMEOUT,
        ),
    )
    turn_off_prepared_statements(app.config)
    if development:
        app.config["SECRET_KEY"] = app.config.get("SECRET_KEY") or "dev"
    else:
        check_production_settings(
            app.config,
            default_database_url=default_database_url,
            production_url_example=production_url_example,
        )


def add_connect_timeout(config: dict[str, Any], timeout: float) -> None:
    """Give the database driver a connect timeout (DATABASE_CONNECT_TIMEOUT)."""
    arguments = connect_timeout.connect_args(
        make_url(config["SQLALCHEMY_DATABASE_URI"]), timeout
    )
    if arguments:
        options = config["SQLALCHEMY_ENGINE_OPTIONS"]
        options["connect_args"] = {**arguments, **options.get("connect_args", {})}


def turn_off_prepared_statements(config: dict[str, Any]) -> None:
    """PostgreSQL: psycopg prepares a query it has run 5 times on a connection,
    and a prepared statement lives on one server connection. Behind a
    transaction pooler (PgBouncer before 1.21, RDS Proxy, Supavisor), the next
    transaction may run on another: "prepared statement _pg3_0 does not exist"
    or "already exists", or another client's statement of the same name runs.
    So psycopg prepares nothing (prepare_threshold=None), which costs each
    repeated query its planning (docs/connection-poolers.md). Over a direct
    connection, turn it back on: FLASK_SQLALCHEMY_ENGINE_OPTIONS=
    '{"connect_args": {"prepare_threshold": 5}}'."""
    if make_url(config["SQLALCHEMY_DATABASE_URI"]).get_driver_name() == "psycopg":
        options = config["SQLALCHEMY_ENGINE_OPTIONS"]
        options["connect_args"] = {
            "prepare_threshold": None,
            **options.get("connect_args", {}),
        }


def check_production_settings(
    config: Mapping[str, Any],
    *,
    default_database_url: str | None = None,
    production_url_example: str | None = None,
) -> None:
    """Refuse to serve without a real secret key or a production database."""
    key = config.get("SECRET_KEY")
    if not key:
        raise ConfigError(
            "SECRET_KEY is not set, and the app is not in debug mode. Set it in the"
            f" environment to a long random value, for example the output of"
            f" {_GENERATE_SECRET_KEY}. For local development, run with FLASK_DEBUG=1."
        )
    if not isinstance(key, str | bytes):
        raise ConfigError(
            f"SECRET_KEY must be a string, not {type(key).__name__}."
            f" Generate one with {_GENERATE_SECRET_KEY}."
        )
    key_text = key.decode("latin-1") if isinstance(key, bytes) else key
    if (
        key_text.lower() in _PLACEHOLDER_SECRET_KEYS
        or len(key_text) < MIN_SECRET_KEY_LENGTH
    ):
        raise ConfigError(
            "SECRET_KEY is a placeholder or shorter than"
            f" {MIN_SECRET_KEY_LENGTH} characters, which is unsafe outside"
            f" development. Generate one with {_GENERATE_SECRET_KEY}."
        )
    if secret_key_bits(key_text) < MIN_SECRET_KEY_BITS or _repetitive(key_text):
        raise ConfigError(
            "SECRET_KEY is too predictable (a repeated or low-variety string, under"
            f" {MIN_SECRET_KEY_BITS} bits by the estimate app_setup.py documents),"
            f" which is unsafe outside development. Generate one with"
            f" {_GENERATE_SECRET_KEY}."
        )
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    ):
        raise ConfigError(
            "DATABASE_URL is an in-memory SQLite database, whose data is lost when"
            " the process exits, and the app is not in debug mode. Point it at a"
            " file (sqlite:////var/lib/app/app.db) or a database server."
        )
    if (
        production_url_example is not None
        and config["SQLALCHEMY_DATABASE_URI"] == default_database_url
    ):
        raise ConfigError(
            "DATABASE_URL is not set, and the app is not in debug mode. Set it to"
            f" the production database, for example {production_url_example}."
            " For local development, run with FLASK_DEBUG=1."
        )


def secret_key_bits(key: str) -> float:
    """Estimated entropy: the length times the Shannon entropy of the characters."""
    counts = [key.count(character) for character in set(key)]
    return -sum(n * math.log2(n / len(key)) for n in counts)


def _repetitive(key: str) -> bool:
    """More than a quarter of its 4-character runs repeat (a placeholder, repeated)."""
    runs = [key[i : i + 4] for i in range(len(key) - 3)]
    return (len(runs) - len(set(runs))) * 4 > len(runs)


# --- The extensions ------------------------------------------------------------


def init_app(app: Flask, db: SQLAlchemy, migrate: Migrate) -> None:
    """Bind ``db`` and ``migrate`` to ``app``, safely.

    Refuses a model that sets __bind_key__ on a plain declarative class, gives
    each bind a database in debug mode, explains a missing driver or bad engine
    options in one paragraph, gives SQLite the transaction and foreign-key
    behaviour of the server engines, clears PyMySQL's handshake read timeout,
    and makes every `flask db` command check the migrations folder first.
    """
    _refuse_binds_on_plain_models(db)
    _give_each_bind_a_database(app, db)
    # Every `flask db` command first checks that the migrations folder holds
    # the files it runs: a deleted env.py is explained, not a traceback.
    if template_files.check_migrations_folder not in migrate.configure_callbacks:
        migrate.configure(template_files.check_migrations_folder)
    try:
        db.init_app(app)
        migrate.init_app(app, db)
    except (ImportError, NoSuchModuleError) as exc:
        raise ConfigError(
            f"The database driver for DATABASE_URL is not installed ({exc})."
            " Install the driver this project declares with `uv sync`, or"
            " add the one the URL names."
        ) from exc
    except (TypeError, ValueError, ArgumentError) as exc:
        raise ConfigError(
            "SQLAlchemy refused the engine options (SQLALCHEMY_ENGINE_OPTIONS,"
            f" from FLASK_SQLALCHEMY_ENGINE_OPTIONS): {exc}. Give only"
            ' create_engine() options, such as {"pool_size": 10}.'
        ) from None
    with app.app_context():
        for engine in db.engines.values():
            connect_timeout.install(engine)
            if engine.dialect.name == "sqlite":
                _make_sqlite_behave(engine)


def _refuse_binds_on_plain_models(db: SQLAlchemy) -> None:
    """A model that subclasses the declarative base directly is not a
    db.Model: Flask-SQLAlchemy ignores its __bind_key__ and its rows would go
    to the main database. Say so rather than write them there."""
    for mapper in cast(Any, db.Model).registry.mappers:
        cls = mapper.class_
        if "__bind_key__" in vars(cls) and not issubclass(cls, db.Model):
            raise ConfigError(
                f"{cls.__module__}.{cls.__name__} sets __bind_key__ but subclasses"
                " extensions.Base, so Flask-SQLAlchemy ignores the bind and would"
                " use the main database. Subclass extensions.Model instead (only"
                " the base class changes; the table stays the same)."
            )


def _give_each_bind_a_database(app: Flask, db: SQLAlchemy) -> None:
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
        binds[key] = f"sqlite:///{app.import_name.split('.')[0]}_{key}.db"


def _make_sqlite_behave(engine: Engine) -> None:
    """Give SQLite the transaction and foreign-key behaviour of the server engines.

    Python's sqlite3 driver starts transactions late and never for DDL, which
    breaks SAVEPOINTs (and so the tests' per-test rollback) and makes
    migrations non-atomic. This is SQLAlchemy's documented fix: let SQLAlchemy
    emit BEGIN. SQLite also ignores foreign keys unless asked, so an orphan row
    would pass in development and fail in production.
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
