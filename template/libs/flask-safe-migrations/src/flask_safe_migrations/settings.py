"""The project's migration settings (migration_settings.py in its package).

That module is the user's: rendered once, never touched by `copier update`.
Every setting in it is optional, and one it does not define takes the default
below, so a settings module written for an older template keeps working when
the template reads a new setting (and a project updated from a template that
had no settings module works without one).
"""

import importlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import MetaData

# Alembic's include_name and include_object hooks.
NameFilter = Callable[[str | None, str, Mapping[str, str | None]], bool]
ObjectFilter = Callable[[Any, str | None, str, bool, Any], bool]


@dataclass(frozen=True)
class Settings:
    ignore_tables: Collection[str] = ()
    schemas: Collection[str] | None = None
    include_name: NameFilter | None = None
    include_object: ObjectFilter | None = None
    autogenerate_plugins: list[str] | None = None
    configure_options: Mapping[str, Any] = field(default_factory=dict)


def load(name: str) -> Settings:
    """The settings of the module ``name`` (the package's migration_settings),
    or the defaults without one."""
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return Settings()
    return Settings(
        ignore_tables=frozenset(getattr(module, "IGNORE_TABLES", ())),
        schemas=getattr(module, "SCHEMAS", None),
        include_name=getattr(module, "include_name", None),
        include_object=getattr(module, "include_object", None),
        autogenerate_plugins=getattr(module, "AUTOGENERATE_PLUGINS", None),
        configure_options=getattr(module, "CONFIGURE_OPTIONS", {}),
    )


def alembic_options(settings: Settings, metadata: MetaData) -> dict[str, Any]:
    """The options for Alembic's context.configure() that ``settings`` amount to,
    for the database whose models are on ``metadata``."""
    schemas = (
        set(settings.schemas)
        if settings.schemas is not None
        else {table.schema for table in metadata.tables.values() if table.schema}
    )

    def ignored(schema: str | None, table: str | None) -> bool:
        names = {str(table), f"{schema}.{table}"} if schema else {str(table)}
        return any(
            fnmatchcase(name, pattern)
            for name in names
            for pattern in settings.ignore_tables
        )

    def include_name(
        name: str | None, type_: str, parent_names: Mapping[str, str | None]
    ) -> bool:
        # Called before reflection: an ignored table is never even reflected.
        if type_ == "schema":
            return name is None or name in schemas
        if type_ == "table" and ignored(parent_names.get("schema_name"), name):
            return False
        return settings.include_name is None or settings.include_name(
            name, type_, parent_names
        )

    def include_object(
        item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        # The models' side: a model mapped onto a table another tool owns.
        if type_ == "table" and ignored(item.schema, name):
            return False
        return settings.include_object is None or settings.include_object(
            item, name, type_, reflected, compare_to
        )

    options: dict[str, Any] = {
        "include_name": include_name,
        "include_object": include_object,
    }
    if schemas:
        options["include_schemas"] = True
    if settings.autogenerate_plugins is not None:
        options["autogenerate_plugins"] = settings.autogenerate_plugins
    options.update(settings.configure_options)
    return options
