"""The project's declaration of itself: ``[tool.flask-safe-migrations]`` in its
pyproject.toml.

    [tool.flask-safe-migrations]
    app = "my_app:create_app"       # the app factory, as "module:function"
    production-engine = "postgresql"  # or "mysql", "sqlite"

migrations/env.py and the pytest plugin read it: the app's package (whose
``models`` subpackage and ``migration_settings`` module the machinery reads),
and the engine production runs, which the review checks each revision against
besides SQLite. The library imports nothing of the project but these names.
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .environment import ConfigError
from .rules import ENGINES

TABLE = "flask-safe-migrations"


@dataclass(frozen=True)
class Project:
    root: Path  # the folder of pyproject.toml and migrations/
    app: str  # "package:function"
    production_engine: str

    @property
    def package(self) -> str:
        return self.app.partition(":")[0].split(".")[0]

    @property
    def models(self) -> str:
        return f"{self.package}.models"

    @property
    def settings_module(self) -> str:
        return f"{self.package}.migration_settings"

    @property
    def lock_name(self) -> str:
        """The migration lock's name: the same in every release of the app,
        so old and new instances of a rolling deploy share it."""
        return f"{self.package}.migrations"


def load(root: Path) -> Project:
    """The project whose pyproject.toml is in ``root``; ConfigError, naming the
    fix, when it does not declare itself."""
    path = root / "pyproject.toml"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}.") from None
    table = document.get("tool", {}).get(TABLE)
    example = (
        f'[tool.{TABLE}]\napp = "my_app:create_app"\nproduction-engine = "postgresql"'
    )
    if not isinstance(table, dict):
        raise ConfigError(
            f"{path} has no [tool.{TABLE}] table, which names the app and the"
            f" production database engine. Add one:\n{example}"
        )
    app = table.get("app")
    if not isinstance(app, str) or not _is_factory(app):
        raise ConfigError(
            f"[tool.{TABLE}] app in {path} must name the app factory as"
            f' "module:function" (got {app!r}), as in:\n{example}'
        )
    engine = table.get("production-engine")
    if engine not in ENGINES:
        raise ConfigError(
            f"[tool.{TABLE}] production-engine in {path} must be one of"
            f" {', '.join(map(repr, ENGINES))} (got {engine!r})."
        )
    return Project(root=root, app=app, production_engine=str(engine))


def _is_factory(text: str) -> bool:
    module, colon, function = text.partition(":")
    return bool(colon) and all(
        part.isidentifier() for part in (*module.split("."), function)
    )
