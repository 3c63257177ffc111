"""A minimal project on flask-safe-migrations, written without copier, for
testing the library in-process.

``MiniProject.write(root)`` lays out, in ``root``, what a rendered project
gives the library, and nothing else:

    pyproject.toml                [tool.flask-safe-migrations]: app, production-engine
    <package>/__init__.py         create_app(test_config)
    <package>/config.py           configure(): flask_safe_migrations.configure
    <package>/extensions.py       db (the naming convention), Model, migrate, init_app
    <package>/models/__init__.py  the models (set_models())
    <package>/migration_settings.py   only when given
    migrations/env.py, alembic.ini, script.py.mako   template/migrations/, verbatim
    migrations/versions/          empty

Each project's package has a name of its own (``miniapp_<hex>``), importable
while the project is open (its root is on sys.path); ``close()`` takes it off
and forgets the package's modules. The ``mini_project`` fixture
(tests/library/conftest.py) makes, opens and closes one per test.

Running the migrations, in-process, inside an app context:

- ``upgrade``, ``downgrade``, ``migrate``, ``check``, ``stamp``: what
  ``flask_migrate.upgrade()`` (and the others) run, on the Alembic config
  Flask-Migrate makes (its configure callbacks included), minus
  Flask-Migrate's ``catch_errors``: an error raises Alembic's CommandError
  (or the ConfigError/ClickException the library raised) with its message,
  instead of logging it and exiting. Alembic's logging configuration
  (alembic.ini) is not applied, so pytest's log capture keeps working.
- ``autogenerate(models, message)``: set the models and write their
  revision as a developer does (upgrade, then migrate, on a development
  database of the project's own). A history that many tests share is made
  once and copied with ``add_revisions()`` (test_commands.py's ``history``
  fixture; conftest.isolated() sets up a fixture wider than a test).
- ``flask(app, "db", "upgrade")``: the `flask` command itself, through
  Flask's CLI test runner and a FlaskGroup, so the commands that the
  ``flask.commands`` entry point adds (db-wait, db-status, db-baseline) are
  there, and Flask-Migrate's own error handling and alembic.ini's logging
  apply (the loggers are put back afterwards).
"""

import contextlib
import importlib
import logging
import shutil
import sys
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import Result
from flask import Flask
from flask.cli import FlaskGroup
from flask_sqlalchemy import SQLAlchemy

from ..helpers import ROOT

TEMPLATE_MIGRATIONS = ROOT / "template" / "migrations"
# The template's own files, copied as they are rendered (no Jinja in them).
MIGRATIONS_FILES = ("env.py", "alembic.ini", "script.py.mako")

# config.py's PRODUCTION_URL_EXAMPLE for each `database` answer (the
# production-engine): None lets production run on the default SQLite file.
PRODUCTION_URL_EXAMPLES: dict[str, str | None] = {
    "postgresql": "postgresql://user:password@host:5432/dbname",
    "mysql": "mysql://user:password@host:3306/dbname",
    "sqlite": None,
}

# What models/__init__.py starts with; set_models() adds the classes.
MODELS_HEADER = '''\
"""The models."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model, db
'''

# A model to start from: the template's example model, shortened.
USERS = """
class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
"""

_INIT = '''\
"""A minimal project on flask-safe-migrations (tests/library/miniproject.py)."""

from collections.abc import Mapping
from typing import Any

from flask import Flask

from . import config, extensions, models  # noqa: F401


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    config.configure(app, test_config)
    extensions.init_app(app)
    return app
'''

_CONFIG = """\
from collections.abc import Mapping
from typing import Any

import flask_safe_migrations
from flask import Flask

DEFAULT_DATABASE_URL = "sqlite:///{package}.db"
PRODUCTION_URL_EXAMPLE: str | None = {example!r}


def configure(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    flask_safe_migrations.configure(
        app,
        overrides,
        default_database_url=DEFAULT_DATABASE_URL,
        production_url_example=PRODUCTION_URL_EXAMPLE,
    )
"""

_EXTENSIONS = """\
from pathlib import Path

import flask_safe_migrations
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
Model = db.Model
migrate = Migrate(directory=MIGRATIONS_DIR, compare_type=True, render_as_batch=True)


def init_app(app: Flask) -> None:
    flask_safe_migrations.init_app(app, db, migrate)
"""


@dataclass
class MiniProject:
    """A project in ``root`` whose package is ``package`` (see the module
    docstring). ``database_url``: the database that ``app()`` uses, a SQLite
    file in ``root`` unless given."""

    root: Path
    package: str
    production_engine: str
    database_url: str
    _apps: list[Flask] = field(default_factory=list, repr=False)
    _open: bool = field(default=False, repr=False)

    # --- Making it ---------------------------------------------------------

    @classmethod
    def write(
        cls,
        root: Path,
        *,
        production_engine: str = "postgresql",
        models: str = "",
        migration_settings: str | None = None,
        database_url: str | None = None,
    ) -> "MiniProject":
        """Write a project into ``root`` (made if missing): ``models``, class
        definitions under MODELS_HEADER's imports; ``migration_settings``, the
        source of the package's migration_settings.py (None: no such file)."""
        package = f"miniapp_{uuid.uuid4().hex[:12]}"
        project = cls(
            root=root,
            package=package,
            production_engine=production_engine,
            database_url=database_url or f"sqlite:///{root / 'app.db'}",
        )
        root.mkdir(parents=True, exist_ok=True)
        (root / "pyproject.toml").write_text(
            textwrap.dedent(f"""\
                [project]
                name = "{package.replace("_", "-")}"
                version = "0.1.0"

                [tool.flask-safe-migrations]
                app = "{package}:create_app"
                production-engine = "{production_engine}"
                """)
        )
        project.package_dir.mkdir()
        (project.package_dir / "models").mkdir()
        project.write_file("__init__.py", _INIT)
        example = PRODUCTION_URL_EXAMPLES[production_engine]
        project.write_file(
            "config.py", _CONFIG.format(package=package, example=example)
        )
        project.write_file("extensions.py", _EXTENSIONS)
        project.set_models(models)
        if migration_settings is not None:
            project.write_file("migration_settings.py", migration_settings)
        project.migrations_dir.mkdir()
        for name in MIGRATIONS_FILES:
            shutil.copy(TEMPLATE_MIGRATIONS / name, project.migrations_dir / name)
        project.versions_dir.mkdir()
        return project

    @property
    def package_dir(self) -> Path:
        return self.root / self.package

    @property
    def migrations_dir(self) -> Path:
        return self.root / "migrations"

    @property
    def versions_dir(self) -> Path:
        return self.migrations_dir / "versions"

    def write_file(self, relative: str, text: str) -> Path:
        """Write ``text`` to ``relative`` (a path in the package, such as
        "models/order.py"); the next app imports the package again."""
        path = self.package_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.forget_modules()
        return path

    def set_models(self, models: str) -> None:
        """Make ``models`` (class definitions, MODELS_HEADER's imports
        available) the content of models/__init__.py: the next app has them."""
        self.write_file("models/__init__.py", MODELS_HEADER + models)

    def add_revisions(self, files: Mapping[str, str]) -> None:
        """Write revision files (name -> text) into migrations/versions/, as
        ``{p.name: p.read_text() for p in other.revisions()}`` gives them:
        a history autogenerated once, for many projects."""
        for name, text in files.items():
            (self.versions_dir / name).write_text(text)

    def revisions(self) -> list[Path]:
        """The revision files in migrations/versions/, by name (by time)."""
        return sorted(self.versions_dir.glob("*.py"))

    # --- Opening it ----------------------------------------------------------

    def open(self) -> None:
        """Make the package importable (its root first on sys.path)."""
        sys.path.insert(0, str(self.root))
        importlib.invalidate_caches()
        self._open = True

    @contextlib.contextmanager
    def opened(self) -> Iterator["MiniProject"]:
        """open(), and close() after."""
        self.open()
        try:
            yield self
        finally:
            self.close()

    def close(self) -> None:
        """Dispose of the apps' engines, take the root off sys.path and forget
        the package's modules."""
        for app in self._apps:
            db: SQLAlchemy = app.extensions["sqlalchemy"]
            with app.app_context():
                for engine in db.engines.values():
                    engine.dispose()
        self._apps.clear()
        if self._open:
            sys.path.remove(str(self.root))
            self._open = False
        self.forget_modules()

    def forget_modules(self) -> None:
        """Drop the package's modules from sys.modules, so the next import
        reads the files again (sys.dont_write_bytecode is on in the fixture, so
        no stale bytecode is read either)."""
        for name in [n for n in sys.modules if n.split(".")[0] == self.package]:
            del sys.modules[name]

    def module(self, name: str = "") -> ModuleType:
        """The package (or its module ``name``, such as "extensions")."""
        return importlib.import_module(
            f"{self.package}.{name}" if name else self.package
        )

    # --- Its app -----------------------------------------------------------

    def create_app(self, test_config: Mapping[str, Any] | None = None) -> Flask:
        """The package's create_app(test_config), as a user calls it."""
        app: Flask = self.module().create_app(test_config)
        self._apps.append(app)
        return app

    def app(self, **overrides: Any) -> Flask:
        """An app in testing mode on ``database_url``, with ``overrides``."""
        return self.create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": self.database_url,
                **overrides,
            }
        )

    # --- Its migrations, in-process ----------------------------------------

    def alembic_config(self, app: Flask, *opts: str) -> Config:
        """The Alembic config Flask-Migrate makes for ``app`` (``opts``: its
        command-line flags, as "autogenerate"), without alembic.ini's logging."""
        with app.app_context():
            config: Config = app.extensions["migrate"].migrate.get_config(
                opts=list(opts)
            )
        config.attributes["configure_logger"] = False
        return config

    def upgrade(self, app: Flask, revision: str = "heads") -> None:
        """`flask db upgrade [revision]`."""
        with app.app_context():
            command.upgrade(self.alembic_config(app), revision)

    def downgrade(self, app: Flask, revision: str = "-1") -> None:
        """`flask db downgrade [revision]`."""
        with app.app_context():
            command.downgrade(self.alembic_config(app), revision)

    def stamp(self, app: Flask, revision: str = "heads", purge: bool = False) -> None:
        """`flask db stamp [revision]`."""
        with app.app_context():
            command.stamp(self.alembic_config(app), revision, purge=purge)

    def check(self, app: Flask) -> None:
        """`flask db check`: CommandError when the models and the migrations
        differ (or the database is not at the newest revision)."""
        with app.app_context():
            command.check(self.alembic_config(app))

    def migrate(
        self, app: Flask, message: str = "change", rev_id: str | None = None
    ) -> Path | None:
        """`flask db migrate -m message`: the revision file it wrote, or None
        when autogenerate found no change (the library then writes none)."""
        before = set(self.revisions())
        with app.app_context():
            command.revision(
                self.alembic_config(app, "autogenerate"),
                message,
                autogenerate=True,
                rev_id=rev_id,
            )
        written = sorted(set(self.revisions()) - before)
        assert len(written) <= 1, written
        return written[0] if written else None

    def autogenerate(
        self, models: str, message: str, rev_id: str | None = None
    ) -> Path:
        """Set the models to ``models`` and write their revision as a developer
        does: `flask db upgrade`, then `flask db migrate`, on a development
        database (a SQLite file of its own, left at the newest revision). The
        revision file; AssertionError if autogenerate found no change."""
        self.set_models(models)
        app = self.app(SQLALCHEMY_DATABASE_URI=self.development_url)
        self.upgrade(app)
        written = self.migrate(app, message, rev_id)
        assert written is not None, f"no change in the models for {message!r}"
        self.upgrade(app)
        return written

    @property
    def development_url(self) -> str:
        """The database autogenerate() works on."""
        return f"sqlite:///{self.root / 'development.db'}"

    def heads(self, app: Flask) -> tuple[str, ...]:
        """The newest revisions of migrations/versions/."""
        script = ScriptDirectory.from_config(self.alembic_config(app))
        return tuple(script.get_heads())

    def current(self, app: Flask) -> tuple[str, ...]:
        """The revisions the app's database is at."""
        db: SQLAlchemy = app.extensions["sqlalchemy"]
        with app.app_context(), db.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_heads()

    # --- The `flask` command -------------------------------------------------

    def flask(self, app: Flask, *args: str) -> Result:
        """Run `flask <args>` for ``app`` in-process; exceptions other than
        SystemExit propagate (catch_exceptions=False). The loggers that a
        `flask db` command configures (alembic.ini) are put back after it."""
        with logging_kept():
            return app.test_cli_runner().invoke(
                FlaskGroup(load_dotenv=False), list(args), catch_exceptions=False
            )


@contextlib.contextmanager
def logging_kept() -> Iterator[None]:
    """Put every logger back as it was: alembic.ini's fileConfig (which `flask
    db ...` applies) replaces the root logger's handlers, pytest's log capture
    among them, and leaves handlers on streams that are closed after the test."""
    loggers = [logging.root] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    saved = {
        logger: (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for logger in loggers
    }
    try:
        yield
    finally:
        for logger in logging.root.manager.loggerDict.values():
            if isinstance(logger, logging.Logger) and logger not in saved:
                # Made during the test: as logging.getLogger() makes one.
                saved[logger] = (logging.NOTSET, [], True, False)
        for logger, (level, handlers, propagate, disabled) in saved.items():
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.disabled = disabled
