"""Settings come from the environment; bad ones stop the app with a clear
message (flask_safe_migrations.configure, init_app and the parsers of
environment.py, on a tiny Flask app).

A project's config.py passes configure() its default database and the example
of its production engine's URL; the tests that depend on the engine run with
each example (None: a SQLite project). What the project's own files do
(wsgi.py exiting with the message) is tested in the generated suite.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import Migrate
from flask_safe_migrations import (
    ConfigError,
    configure,
    database_url,
    disposable,
    init_app,
    production,
    pytest_plugin,
)
from flask_safe_migrations.app_setup import secret_key_bits
from flask_sqlalchemy import SQLAlchemy

from .miniproject import PRODUCTION_URL_EXAMPLES

GOOD_SECRET_KEY = "6f1d0c9b3e8a47d2a5c1f07e9b2d4c68a3e5f7091b2c4d6e8f0a1b3c5d7e9f20"
DEFAULT_DATABASE_URL = "sqlite:///tiny_app.db"
# A production database of each engine, as an operator would give it, and
# the driver the project's URL then names.
PRODUCTION_URLS = {
    "postgresql": ("postgres://app:pw@db.internal/app", "postgresql+psycopg://"),
    "mysql": ("mysql://app:pw@db.internal/app", "mysql+pymysql://"),
    "sqlite": (None, "sqlite:///"),
}


@pytest.fixture
def instance_path(tmp_path: Path) -> Path:
    """Where the app's relative SQLite files go (not the working directory)."""
    return tmp_path / "instance"


@pytest.fixture(params=sorted(PRODUCTION_URL_EXAMPLES))
def engine(request: pytest.FixtureRequest) -> str:
    """Each production engine a project may have (its `database` answer)."""
    engine: str = request.param
    return engine


def create_app(
    overrides: dict[str, Any] | None = None,
    *,
    instance_path: Path,
    engine: str = "postgresql",
) -> Flask:
    """What a project's create_app() does with the library: configure() with
    its default database and its engine's example URL, then init_app()."""
    app = Flask(__name__, instance_path=str(instance_path))
    configure(
        app,
        overrides,
        default_database_url=DEFAULT_DATABASE_URL,
        production_url_example=PRODUCTION_URL_EXAMPLES[engine],
    )
    init_app(app, SQLAlchemy(), Migrate(directory=str(instance_path / "migrations")))
    return app


def configured(overrides: dict[str, Any] | None = None) -> Flask:
    """An app configure() has read its settings into; no extensions bound."""
    app = Flask(__name__)
    configure(
        app,
        overrides,
        default_database_url=DEFAULT_DATABASE_URL,
        production_url_example=PRODUCTION_URL_EXAMPLES["postgresql"],
    )
    return app


# --- Database URLs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        ("postgresql://u:p@db/app", "postgresql+psycopg://u:p@db/app"),
        ("postgresql+psycopg://u:p@db/app", "postgresql+psycopg://u:p@db/app"),
        ("mysql://u:p@db/app", "mysql+pymysql://u:p@db/app?charset=utf8mb4"),
        ("mariadb://u:p@db/app", "mariadb+pymysql://u:p@db/app?charset=utf8mb4"),
        ("sqlite:///app.db", "sqlite:///app.db"),
    ],
)
def test_database_urls_get_this_projects_drivers(given: str, expected: str) -> None:
    assert database_url(given) == expected


def test_malformed_database_url_is_refused_without_showing_the_password() -> None:
    with pytest.raises(ConfigError, match="not a database URL") as error:
        database_url("postgres//app:hunter2@db/app")
    assert "hunter2" not in error.value.message


def test_unknown_database_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown database type 'mongodb'"):
        database_url("mongodb://db/app")


def test_empty_database_url_is_refused(
    environment: pytest.MonkeyPatch, instance_path: Path
) -> None:
    environment.setenv("DATABASE_URL", "")
    with pytest.raises(ConfigError, match="DATABASE_URL is set but empty"):
        create_app({"TESTING": True}, instance_path=instance_path)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("app:hunter2@db/app", "no scheme"),
        ("postgresql:/app:hunter2@db/app", "not a database URL"),
        ("postgresql:app:hunter2@db/app", "not a database URL"),
        ("postgresql://app:hunt@er2@db/app", "'@' after its host"),
        ("postgresql://app:hunter2@db:port/app", "port is not a number"),
        ("postgresql://app:hunter2/x@db:5432x/app", "port is not a number"),
        ("mongodb://app:hunter2@db/app", "unknown database type"),
        ("mysql+mysqldb://app:hunter2@db/app", "driver 'mysqldb', which is not"),
    ],
)
def test_a_bad_database_url_is_explained_without_its_password(
    url: str, words: str
) -> None:
    with pytest.raises(ConfigError, match=words) as error:
        database_url(url)
    assert "hunter2" not in error.value.message
    assert "er2" not in error.value.message


def test_a_bad_database_url_names_percent_encoding() -> None:
    with pytest.raises(ConfigError, match="%40"):
        database_url("postgresql://app:p@ss@db/app")


def test_unknown_pymysql_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="PyMySQL does not know: bogus"):
        database_url("mysql://app:pw@db/app?bogus=1")


# --- Production and debug mode ------------------------------------------------------


def test_production_refuses_to_start_without_secret_key(instance_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app(instance_path=instance_path)


def test_the_message_is_what_the_flask_command_and_wsgi_py_print(
    instance_path: Path,
) -> None:
    """ConfigError is a ClickException: `flask` prints "Error: <message>", and
    wsgi.py exits with the same, not a traceback."""
    with pytest.raises(ConfigError) as error:
        create_app(instance_path=instance_path)
    assert error.value.message.startswith("SECRET_KEY is not set")
    assert error.value.format_message() == error.value.message
    assert error.value.exit_code == 1


def test_production_refuses_a_placeholder_secret_key(
    environment: pytest.MonkeyPatch, instance_path: Path
) -> None:
    environment.setenv("SECRET_KEY", "change-me")
    with pytest.raises(ConfigError, match="placeholder"):
        create_app(instance_path=instance_path)


def test_production_needs_a_database_url_unless_the_engine_is_sqlite(
    environment: pytest.MonkeyPatch, instance_path: Path, engine: str
) -> None:
    """Without DATABASE_URL the app would use the SQLite file of development:
    refused, with the engine's example, unless production runs on SQLite."""
    environment.setenv("SECRET_KEY", GOOD_SECRET_KEY)
    example = PRODUCTION_URL_EXAMPLES[engine]
    if example is None:
        app = create_app(instance_path=instance_path, engine=engine)
        assert app.config["SQLALCHEMY_DATABASE_URI"] == DEFAULT_DATABASE_URL
        return
    with pytest.raises(ConfigError, match="DATABASE_URL is not set") as error:
        create_app(instance_path=instance_path, engine=engine)
    assert f"for example {example}." in error.value.message


def test_production_starts_with_real_settings(
    environment: pytest.MonkeyPatch, instance_path: Path, engine: str
) -> None:
    environment.setenv("SECRET_KEY", GOOD_SECRET_KEY)
    url, driver = PRODUCTION_URLS[engine]
    if url is not None:
        environment.setenv("DATABASE_URL", url)

    app = create_app(instance_path=instance_path, engine=engine)
    production(app.config)  # as wsgi.py checks it

    assert app.config["SECRET_KEY"] == GOOD_SECRET_KEY
    assert not app.debug
    assert not app.testing
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith(driver)


def test_debug_mode_runs_without_settings(
    environment: pytest.MonkeyPatch, instance_path: Path
) -> None:
    environment.setenv("FLASK_DEBUG", "1")

    app = create_app(instance_path=instance_path)

    assert app.debug
    assert app.config["SECRET_KEY"]
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")


@pytest.mark.parametrize("spelling", ["False", "FALSE", "false", "no", "off", "0", ""])
@pytest.mark.parametrize("variable", ["FLASK_DEBUG", "FLASK_TESTING"])
def test_no_spelling_of_false_turns_off_the_production_checks(
    environment: pytest.MonkeyPatch, instance_path: Path, variable: str, spelling: str
) -> None:
    environment.setenv(variable, spelling)
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app(instance_path=instance_path)
    # With the settings production needs, it is production (wsgi.py serves it).
    environment.setenv("SECRET_KEY", GOOD_SECRET_KEY)
    environment.setenv("DATABASE_URL", "postgres://app:pw@db.internal/app")
    app = create_app(instance_path=instance_path)
    assert not app.debug
    assert not app.testing
    production(app.config)


@pytest.mark.parametrize(
    ("variable", "key"), [("FLASK_DEBUG", "DEBUG"), ("FLASK_TESTING", "TESTING")]
)
def test_the_production_server_refuses_debug_and_testing_mode(
    environment: pytest.MonkeyPatch, instance_path: Path, variable: str, key: str
) -> None:
    """Both skip the production checks; wsgi.py calls production() before
    gunicorn serves anything (and scripts/start.sh checks before it starts)."""
    environment.setenv(variable, "1")
    app = create_app(instance_path=instance_path)
    assert app.config[key] is True

    with pytest.raises(ConfigError) as error:
        production(app.config)
    assert error.value.message.startswith(f"{variable} is on")


@pytest.mark.parametrize("spelling", ["1", "true", "True", "yes", "on"])
def test_spellings_of_true_turn_on_debug_mode(
    environment: pytest.MonkeyPatch, instance_path: Path, spelling: str
) -> None:
    environment.setenv("FLASK_DEBUG", spelling)
    assert create_app(instance_path=instance_path).debug is True


def test_a_flag_that_is_not_yes_or_no_is_refused(
    environment: pytest.MonkeyPatch, instance_path: Path
) -> None:
    environment.setenv("FLASK_DEBUG", "maybe")
    with pytest.raises(ConfigError, match="FLASK_DEBUG='maybe' is not a yes-or-no"):
        create_app(instance_path=instance_path)


# --- The secret key ---------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "a" * 32,
        "change-me" * 4,
        "0123456789" * 4,
        "abababababababababababababababab",
        "passwordpasswordpasswordpassword1",
    ],
)
def test_production_refuses_a_weak_secret_key(
    environment: pytest.MonkeyPatch, instance_path: Path, key: str
) -> None:
    environment.setenv("SECRET_KEY", key)
    with pytest.raises(ConfigError, match="SECRET_KEY is"):
        create_app(instance_path=instance_path)


def test_a_generated_secret_key_is_strong() -> None:
    assert secret_key_bits(GOOD_SECRET_KEY) >= 128
    assert secret_key_bits("a" * 32) == 0


@pytest.mark.parametrize("value", ["12345678901234567890123456789012345", "true"])
def test_flask_secret_key_is_read_as_text(
    environment: pytest.MonkeyPatch, instance_path: Path, value: str
) -> None:
    """from_prefixed_env reads these as a number and a boolean."""
    environment.setenv("FLASK_SECRET_KEY", value)
    with pytest.raises(ConfigError, match="SECRET_KEY is"):
        create_app(instance_path=instance_path)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_production_refuses_an_in_memory_database(
    environment: pytest.MonkeyPatch, instance_path: Path, url: str
) -> None:
    environment.setenv("SECRET_KEY", GOOD_SECRET_KEY)
    environment.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError, match="in-memory SQLite"):
        create_app(instance_path=instance_path)


# --- Engine options and numbers -----------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [('"fast"', "must be a JSON object"), ('{"bogus": 1}', "refused the engine")],
)
def test_bad_engine_options_are_explained(
    environment: pytest.MonkeyPatch, instance_path: Path, options: str, words: str
) -> None:
    environment.setenv("FLASK_SQLALCHEMY_ENGINE_OPTIONS", options)
    with pytest.raises(ConfigError, match=words):
        create_app({"TESTING": True}, instance_path=instance_path)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TRUSTED_PROXIES", "two"), ("DATABASE_CONNECT_TIMEOUT", "soon")],
)
def test_bad_numbers_are_explained(
    environment: pytest.MonkeyPatch, instance_path: Path, variable: str, value: str
) -> None:
    environment.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        create_app({"TESTING": True}, instance_path=instance_path)


@pytest.mark.parametrize(
    ("url", "connect_args"),
    [
        (
            "postgresql://app:pw@db/app",
            {"connect_timeout": 3, "prepare_threshold": None},
        ),
        ("mysql://app:pw@db/app", {"connect_timeout": 3.0, "read_timeout": 3.0}),
    ],
)
def test_every_server_driver_gets_a_connect_timeout(
    environment: pytest.MonkeyPatch,
    url: str,
    connect_args: dict[str, float | None],
) -> None:
    """Settings only: the driver of the other engine need not be installed."""
    environment.setenv("DATABASE_CONNECT_TIMEOUT", "3")
    environment.setenv("DATABASE_URL", url)
    app = configured({"TESTING": True})
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"] == connect_args


def test_psycopg_prepares_statements_only_when_asked(
    environment: pytest.MonkeyPatch,
) -> None:
    """Off by default (safe through a transaction pooler such as PgBouncer);
    the engine options turn it back on for a direct connection."""
    environment.setenv("DATABASE_URL", "postgresql://app:pw@db/app")
    app = configured({"TESTING": True})
    connect_args = app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]
    assert connect_args["prepare_threshold"] is None

    environment.setenv(
        "FLASK_SQLALCHEMY_ENGINE_OPTIONS",
        '{"connect_args": {"prepare_threshold": 5}}',
    )
    app = configured({"TESTING": True})
    connect_args = app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]
    assert connect_args["prepare_threshold"] == 5


# --- Session cookies ----------------------------------------------------------------


def test_production_session_cookies_are_secure(
    environment: pytest.MonkeyPatch, instance_path: Path
) -> None:
    environment.setenv("SECRET_KEY", GOOD_SECRET_KEY)
    environment.setenv("DATABASE_URL", "sqlite:////tmp/app.db")
    config = create_app(instance_path=instance_path).config
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_debug_session_cookies_work_over_http(
    environment: pytest.MonkeyPatch, instance_path: Path
) -> None:
    environment.setenv("FLASK_DEBUG", "1")
    assert (
        create_app(instance_path=instance_path).config["SESSION_COOKIE_SECURE"] is False
    )


# --- The test database (the pytest plugin's rule) -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@db/latest",
        "postgresql://u@db/contest",
        "postgresql://u@db/testimonials",
        "postgresql://u@db/app",
        # The driver connects to the query's database, not the path's.
        "postgresql://u@db/app_test?dbname=app",
        "mysql://u@db/app_test?database=app",
        "sqlite:///file:app.db?uri=true",
    ],
)
def test_test_database_url_must_name_a_test_database(
    environment: pytest.MonkeyPatch, url: str
) -> None:
    environment.setenv("TEST_DATABASE_URL", url)
    with pytest.raises(disposable.Refused, match="starts with 'test_'"):
        pytest_plugin.checked_test_urls(SQLAlchemy())


@pytest.mark.parametrize("name", ["test_app", "app_test", "TEST_APP"])
def test_test_database_url_accepts_a_test_database(
    environment: pytest.MonkeyPatch, name: str
) -> None:
    environment.setenv("TEST_DATABASE_URL", f"postgresql://u@db/{name}")
    urls = pytest_plugin.checked_test_urls(SQLAlchemy())
    assert urls[None] == f"postgresql+psycopg://u@db/{name}"


def test_test_database_url_is_never_the_production_database(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("TEST_DATABASE_URL", "postgresql://u@DB:5432/app_test")
    environment.setenv("DATABASE_URL", "postgres://other:pw@db/x?dbname=app_test")
    with pytest.raises(disposable.Refused, match="same database as DATABASE_URL"):
        pytest_plugin.checked_test_urls(SQLAlchemy())


def test_test_bind_databases_follow_the_same_rule(
    environment: pytest.MonkeyPatch,
) -> None:
    """A model with a __bind_key__ needs a test database of its own, under the
    same rule (TEST_SQLALCHEMY_BINDS)."""
    db = SQLAlchemy()

    class Event(db.Model):  # type: ignore[name-defined,misc]
        __bind_key__ = "analytics"
        id = db.Column(db.Integer, primary_key=True)

    environment.setenv("TEST_DATABASE_URL", "postgresql://u@db/app_test")
    environment.setenv(
        "TEST_SQLALCHEMY_BINDS", json.dumps({"analytics": "sqlite:///x"})
    )
    refused = r"TEST_SQLALCHEMY_BINDS\['analytics'\] connects to the database 'x',"
    with pytest.raises(disposable.Refused, match=refused):
        pytest_plugin.checked_test_urls(db)

    environment.setenv(
        "TEST_SQLALCHEMY_BINDS", json.dumps({"analytics": "sqlite:///x_test.db"})
    )
    urls = pytest_plugin.checked_test_urls(db)
    assert urls == {
        None: "postgresql+psycopg://u@db/app_test",
        "analytics": "sqlite:///x_test.db",
    }
