"""The pytest plugin (entry point ``pytest11``): test databases built by the
migrations, kept between runs, and a rolled-back transaction per test.

Active in a project whose pyproject.toml has a [tool.flask-safe-migrations]
table (project.py), which names the app factory. Its fixtures:

- ``session_app``: the app, on test databases at the newest revisions,
  without rows. The schema is built by running the migrations (not
  create_all()), so the tests exercise the schema production gets. The next
  run reuses it and applies only new revisions (reuse.py); `pytest --fresh-db`
  builds it from empty. The summary at the end says which happened.
- ``app``: the app, inside a transaction rolled back after the test: commits
  in the code under test become SAVEPOINTs, and no test sees another's rows.
- ``client``, ``runner``: Flask's test client and CLI runner for ``app``.
- ``alembic_config``, ``revision_steps``, ``proofs``: for the migration tests
  (testing.py), which a project enables by importing them into a test module.

The SQLite test databases live in .pytest_cache/. TEST_DATABASE_URL runs
everything against another database, for example the production engine in
CI. The tests may drop every table in it, so the database the driver connects
to must be named as a test database and be none of DATABASE_URL's or
FLASK_SQLALCHEMY_BINDS's (disposable.py). It is checked before any test runs,
and a run that uses the database first connects to it once, so a refused or
missing database stops the run with one message, and no test passes. Models
with a __bind_key__ get a database of their own: a SQLite file, or the one
named for their bind in TEST_SQLALCHEMY_BINDS (JSON, like
FLASK_SQLALCHEMY_BINDS), under the same rule.
"""

import contextlib
import functools
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.util import CommandError
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, MetaData, inspect, make_url

from . import connect_timeout, disposable, project, reuse, sqlite
from .app_setup import DEFAULT_CONNECT_TIMEOUT
from .environment import ConfigError, database_url
from .revision_steps import RevisionSteps
from .sample_rows import delete_all_rows

# The project under test (None: pytest runs somewhere else, plugin inactive),
# and what importing its app imports, before a test module imports more: a
# model module that only a test imports is still unseen by `flask db migrate`.
PROJECT = pytest.StashKey[project.Project | None]()
APP_MODULES = pytest.StashKey[frozenset[str]]()
# How the session got its test databases, and what the migration walk
# stepped through, for the summary at the end.
SETUP = pytest.StashKey[str]()
WALK = pytest.StashKey[str]()
# The databases TEST_DATABASE_URL and TEST_SQLALCHEMY_BINDS name, checked:
# bind key (None: the main database) -> URL. Empty without TEST_DATABASE_URL.
TEST_URLS = pytest.StashKey[dict[str | None, str]]()

AppFactory = Callable[..., Flask]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fresh-db",
        action="store_true",
        help=(
            "Build the test databases from empty instead of reusing the last"
            " run's, and walk every revision (as in CI)."
        ),
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Find the project, import its app, and check the test databases before
    any test runs: a refused one stops the run with its reason."""
    config = session.config
    root = config.rootpath
    table = _declares_itself(root / "pyproject.toml")
    if not table:
        config.stash[PROJECT] = None
        return
    try:
        config.stash[PROJECT] = found = project.load(root)
        factory(found)
        config.stash[APP_MODULES] = frozenset(sys.modules)
        config.stash[TEST_URLS] = checked_test_urls(db_of(found))
    except (disposable.Refused, ConfigError) as exc:
        raise pytest.UsageError(str(exc)) from None


def _declares_itself(path: Path) -> bool:
    try:
        return f"[tool.{project.TABLE}]" in path.read_text(encoding="utf-8")
    except OSError:
        return False


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if SETUP in config.stash:
        terminalreporter.write_line(f"Test databases: {config.stash[SETUP]}.")
    if WALK in config.stash:
        terminalreporter.write_line(f"Migration walk: {config.stash[WALK]}.")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The single-head test first: with two heads, its advice is the one to read."""
    items.sort(key=lambda item: item.name != "test_there_is_one_head")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Connect to each test database once, if a selected test needs one: one
    that cannot be reached, or that the server turns into another database,
    stops the run before any test. (The single-head test needs none.)"""
    urls = session.config.stash.get(TEST_URLS, {})
    if session.config.option.collectonly or not any(
        "session_app" in getattr(item, "fixturenames", ()) for item in session.items
    ):
        return
    for key, url in urls.items():
        variable = (
            "TEST_DATABASE_URL" if key is None else f"TEST_SQLALCHEMY_BINDS[{key!r}]"
        )
        arguments = connect_timeout.connect_args(make_url(url), DEFAULT_CONNECT_TIMEOUT)
        try:
            disposable.check_server(variable, url, arguments)
        except disposable.Refused as exc:
            raise pytest.UsageError(str(exc)) from None


def in_ci() -> bool:
    """CI sets CI (GitHub Actions and GitLab CI to "true")."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


# --- The project ----------------------------------------------------------------


def project_of(config: pytest.Config) -> project.Project:
    """The project under test; a clear failure outside one."""
    found = config.stash.get(PROJECT, None)
    if found is None:
        pytest.fail(
            f"flask-safe-migrations' fixtures need a [tool.{project.TABLE}] table"
            f" in {config.rootpath / 'pyproject.toml'} naming the app factory"
            ' (app = "my_app:create_app").',
            pytrace=False,
        )
    return found


def factory(found: project.Project) -> AppFactory:
    """The app factory the project names."""
    module, _, name = found.app.partition(":")
    try:
        function: AppFactory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"[tool.{project.TABLE}] app = {found.app!r} in pyproject.toml names"
            f" no importable app factory ({exc})."
        ) from None
    return function


def db_of(found: project.Project) -> SQLAlchemy:
    """The project's Flask-SQLAlchemy extension, before any app exists: the
    ``db`` of its extensions module, else of any module of its package that
    importing the app factory imported."""
    preferred = sys.modules.get(f"{found.package}.extensions")
    if isinstance(getattr(preferred, "db", None), SQLAlchemy):
        return preferred.db  # type: ignore[union-attr,no-any-return]
    for name, module in list(sys.modules.items()):
        if name == found.package or name.startswith(f"{found.package}."):
            candidate = getattr(module, "db", None)
            if isinstance(candidate, SQLAlchemy):
                return candidate
    raise ConfigError(
        f"No Flask-SQLAlchemy extension (a module-level `db`) in {found.package}."
    )


def package_dir(found: project.Project) -> Path:
    return Path(importlib.import_module(found.package).__file__ or ".").parent


# --- The test databases -----------------------------------------------------------


def checked_test_urls(db: SQLAlchemy) -> dict[str | None, str]:
    """TEST_DATABASE_URL's database (key None) and, for each bind the models
    use, the one TEST_SQLALCHEMY_BINDS names, with this project's drivers;
    disposable.Refused unless the tests may empty them (disposable.py). Empty
    without TEST_DATABASE_URL: then SQLite files."""
    main = os.environ.get("TEST_DATABASE_URL", "")
    if not main:
        return {}
    keys = sorted(key for key in db.metadatas if key is not None)
    named: dict[str | None, tuple[str, str]] = {None: ("TEST_DATABASE_URL", main)}
    binds = disposable.bind_urls(
        "TEST_SQLALCHEMY_BINDS", os.environ.get("TEST_SQLALCHEMY_BINDS"), keys
    )
    for bind, bind_url in binds.items():
        named[bind] = (f"TEST_SQLALCHEMY_BINDS[{bind!r}]", bind_url)
    production = production_urls()
    urls: dict[str | None, str] = {}
    for key, (variable, url) in named.items():
        urls[key] = database_url(url, variable)
        disposable.check(variable, urls[key], production)
    return urls


def production_urls() -> dict[str, str]:
    """DATABASE_URL and FLASK_SQLALCHEMY_BINDS's URLs, the databases the tests
    must never be given (with this project's drivers; malformed ones, which
    the app refuses anyway, left out)."""
    given = {"DATABASE_URL": os.environ.get("DATABASE_URL") or ""}
    try:
        binds = json.loads(os.environ.get("FLASK_SQLALCHEMY_BINDS") or "{}")
    except json.JSONDecodeError:
        binds = {}
    if isinstance(binds, dict):
        for key, url in binds.items():
            given[f"FLASK_SQLALCHEMY_BINDS[{key!r}]"] = url
    urls: dict[str, str] = {}
    for variable, url in given.items():
        if url and isinstance(url, str):
            with contextlib.suppress(ConfigError):
                urls[variable] = database_url(url, variable)
    return urls


def session_urls(
    config: pytest.Config, db: SQLAlchemy, directory: Path
) -> dict[str | None, str]:
    """The session's databases: the checked TEST_* ones, or SQLite files in
    ``directory``, one for the app and one for each bind the models use."""
    checked = config.stash.get(TEST_URLS, {})
    if checked:
        return checked.copy()
    keys = sorted(key for key in db.metadatas if key is not None)
    return {
        None: f"sqlite:///{directory / 'test.db'}",
        **{key: f"sqlite:///{directory / f'test_{key}.db'}" for key in keys},
    }


@pytest.fixture(scope="session")
def session_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """The app, on test databases at the newest revisions, without rows: the
    last run's with the new revisions applied, if they can be reused
    (reuse.py), else built from empty."""
    found = project_of(request.config)
    db = db_of(found)
    # No cache with -p no:cacheprovider: then always from empty, as --fresh-db.
    cache: pytest.Cache | None = getattr(request.config, "cache", None)
    why_not: str | None = "pytest's cache is off"
    if request.config.getoption("fresh_db"):
        cache, why_not = None, "--fresh-db"
    directory = (
        tmp_path_factory.mktemp("db") if cache is None else cache.mkdir("test-db")
    )
    urls = session_urls(request.config, db, directory)
    app = factory(found)(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": urls.pop(None),
            "SQLALCHEMY_BINDS": urls,
        }
    )
    with app.app_context():
        steps = session_revision_steps(app)
        machinery = machinery_hash(app)
        key = reuse.cache_key(db.engines)
        if cache is not None:
            record = cache.get(key, None)
            cache.set(key, None)  # unfinished: a run that stops here rebuilds
            why_not = reuse.why_not_reusable(
                record, machinery, steps.script, db.engines
            )
        request.config.stash[SETUP] = prepare_databases(db, steps, why_not)
        # Code under test that commits releases a SAVEPOINT instead of ending the
        # transaction that each test rolls back.
        db.session.configure(join_transaction_mode="create_savepoint")
    yield app
    with app.app_context():
        if cache is not None:
            restore_newest_revision(db, steps)
            cache.set(key, reuse.make_record(machinery, steps.script, db.engines))
        for engine in db.engines.values():
            engine.dispose()


def prepare_databases(
    db: SQLAlchemy, steps: RevisionSteps, why_not_reuse: str | None
) -> str:
    """Bring the test databases to the newest revisions, without rows: reuse
    them (``why_not_reuse`` is None) or build them from empty. Says which."""
    if why_not_reuse is None:
        for engine in db.engines.values():
            delete_all_rows(engine)
        before = reuse.current_heads(db.engines)
        restore_newest_revision(db, steps)
        if reuse.current_heads(db.engines) == before:
            return "reused the last run's, no new revisions"
        return "reused the last run's, the new revisions applied"
    for engine in db.engines.values():
        drop_all_tables(db, engine)
    steps.upgrade_to_heads()
    return f"built from empty ({why_not_reuse})"


def migrations_dir(app: Flask) -> Path:
    return Path(app.extensions["migrate"].directory).resolve()


@functools.cache
def machinery_hash(app: Flask) -> str:
    """What runs the revisions, hashed once per session (reuse.py)."""
    settings = importlib.import_module(app.import_name.split(".")[0]).__file__
    return reuse.machinery_hash(
        migrations_dir(app),
        Path(settings or ".").with_name("migration_settings.py"),
    )


@functools.cache
def session_revision_steps(app: Flask) -> RevisionSteps:
    """The migrations, read once per session (reading them imports every file)."""
    db: SQLAlchemy = app.extensions["sqlalchemy"]
    with app.app_context():
        binds = {bind: engine for bind, engine in db.engines.items() if bind}
        return RevisionSteps(make_alembic_config(app), db.engine, binds)


def make_alembic_config(app: Flask) -> Config:
    """The Alembic config of the migrations (needs an app context). A missing
    migrations/env.py stops the session with the fix (template_files.py)."""
    try:
        config: Config = app.extensions["migrate"].migrate.get_config()
    except CommandError as exc:
        pytest.exit(str(exc), returncode=2)
    config.attributes["configure_logger"] = False  # keep pytest's log capture
    return config


def drop_all_tables(db: SQLAlchemy, engine: Engine) -> None:
    """Empty a test database, whatever an earlier run left in it (in the
    default schema and in the schemas the models name)."""
    existing = set(inspect(engine).get_schema_names())
    named = {t.schema for m in db.metadatas.values() for t in m.tables.values()}
    for schema in {None} | named:
        if schema is None or schema in existing:
            metadata = MetaData()
            metadata.reflect(engine, schema=schema)
            if engine.dialect.name != "sqlite":
                metadata.drop_all(engine)
                continue
            # SQLite cannot drop a foreign key alone, so drop_all() refuses
            # tables whose foreign keys form a cycle: drop them one by one,
            # with enforcement off.
            with engine.connect() as connection, sqlite.foreign_keys_off(connection):
                for table in metadata.tables.values():
                    table.drop(connection)
                connection.commit()


def restore_newest_revision(db: SQLAlchemy, steps: RevisionSteps) -> None:
    """Upgrade the test database to the newest revision(s), whatever a test left
    it at, so that one failing test does not fail the ones after it."""
    try:
        steps.upgrade_to_heads()
    except Exception:  # e.g. alembic_version names a revision the code lacks
        for engine in db.engines.values():
            drop_all_tables(db, engine)
        steps.upgrade_to_heads()


# --- Fixtures for tests -------------------------------------------------------------


@pytest.fixture
def app(session_app: Flask) -> Iterator[Flask]:
    """The app, with every database change the test makes rolled back after it."""
    db: SQLAlchemy = session_app.extensions["sqlalchemy"]
    with session_app.app_context():
        engines = dict(db.engines)
        connections = {bind: engine.connect() for bind, engine in engines.items()}
        transactions = [connection.begin() for connection in connections.values()]
        # Flask-SQLAlchemy's session takes its connections from db.engines.
        for bind, connection in connections.items():
            db.engines[bind] = connection  # type: ignore[index]
        try:
            yield session_app
        finally:
            db.session.remove()
            for transaction in transactions:
                transaction.rollback()
            for connection in connections.values():
                connection.close()
            for bind, engine in engines.items():
                db.engines[bind] = engine  # type: ignore[index]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def alembic_config(session_app: Flask) -> Iterator[Config]:
    """For tests that migrate the test database; it is left at the newest revision."""
    db: SQLAlchemy = session_app.extensions["sqlalchemy"]
    with session_app.app_context():
        yield make_alembic_config(session_app)
        restore_newest_revision(db, session_revision_steps(session_app))


@pytest.fixture
def revision_steps(session_app: Flask) -> Iterator[RevisionSteps]:
    """The migrations, run one revision at a time on the test database. It is
    left at the newest revision, with no rows, for the other tests."""
    db: SQLAlchemy = session_app.extensions["sqlalchemy"]
    with session_app.app_context():
        steps = session_revision_steps(session_app)
        yield steps
        delete_all_rows(db.engine)
        restore_newest_revision(db, steps)


@pytest.fixture
def proofs(
    request: pytest.FixtureRequest, session_app: Flask
) -> Iterator[reuse.Proofs | None]:
    """What earlier runs of the migration tests proved on these databases with
    the same files, for a local run to skip (reuse.py); the test adds what it
    proves. None in CI, with --fresh-db or without pytest's cache: prove all."""
    cache: pytest.Cache | None = getattr(request.config, "cache", None)
    if cache is None or request.config.getoption("fresh_db") or in_ci():
        yield None
        return
    db: SQLAlchemy = session_app.extensions["sqlalchemy"]
    with session_app.app_context():
        script = session_revision_steps(session_app).script
        # The test files a proof depends on: the test module, the project's
        # conftest.py and sample rows (besides the migrations and this library).
        tests = request.path.parent
        files = [request.path, tests / "conftest.py", tests / "migration_rows.py"]
        context = reuse.proof_context(machinery_hash(session_app), files, db.engines)
        key = reuse.cache_key(db.engines) + "-proofs"
        proofs = reuse.Proofs.load(
            cache.get(key, None), context, reuse.chain_hashes(script)
        )
        yield proofs
        cache.set(key, proofs.record())


def app_modules(config: pytest.Config) -> frozenset[str]:
    return config.stash.get(APP_MODULES, frozenset())


def stash_walk(config: pytest.Config, text: str) -> None:
    config.stash[WALK] = text
