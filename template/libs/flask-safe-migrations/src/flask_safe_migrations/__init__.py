"""flask-safe-migrations: Flask-SQLAlchemy and Flask-Migrate (Alembic) with
migrations that keep the data, on SQLite, PostgreSQL and MySQL/MariaDB.

The public API, documented in docs/api.md:

- configure(app, overrides, default_database_url=..., production_url_example=...)
  reads the app's settings from the environment and refuses a bad one;
- init_app(app, db, migrate) binds Flask-SQLAlchemy and Flask-Migrate safely;
- production(config) refuses debug and testing mode (for wsgi.py);
- retry_transaction(session) runs a unit of work again when the database
  aborted it to break a deadlock (is_transient says which errors);
- backfill(table, values, where) fills a column from a revision in batches,
  each committed, pausing between them;
- the parsers the project's own settings use: flag, whole_number, seconds,
  text, database_url, each raising ConfigError with the variable and the fix;
- alembic_env.run(alembic.context), what migrations/env.py runs;
- the `flask db-wait`, `db-status` and `db-baseline` commands (the
  ``flask.commands`` entry point) and the pytest plugin (``pytest11``):
  kept test databases, `--fresh-db`, and the migration tests in
  flask_safe_migrations.testing.

The other modules are the machinery, one concern each (docs/modules.md lists them);
their names may change between versions.
"""

from .app_setup import configure, init_app
from .backfilling import backfill
from .environment import (
    ConfigError,
    database_url,
    flag,
    production,
    seconds,
    text,
    whole_number,
)
from .retrying import is_transient, retry_transaction

__version__ = "1.1.0"

__all__ = [
    "ConfigError",
    "__version__",
    "backfill",
    "configure",
    "database_url",
    "flag",
    "init_app",
    "is_transient",
    "production",
    "retry_transaction",
    "seconds",
    "text",
    "whole_number",
]
