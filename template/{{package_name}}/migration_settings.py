"""How `flask db` compares your models with the database. This file is yours.

migrations/env.py reads it on every `flask db` command, and `copier update`
never changes it. Every setting is optional: delete one and its default (the
value shown) applies.
"""

from collections.abc import Mapping
from typing import Any

# Tables another tool owns (PostGIS's spatial_ref_sys, a job queue's tables):
# autogenerate neither creates, alters nor drops them. Names or patterns
# ("celery_*"); "schema.name" for a table outside the default schema.
IGNORE_TABLES: set[str] = set()

# Schemas that migrations manage besides the default one (PostgreSQL's
# "public"). None: the schemas your models name, as in
# __table_args__ = {"schema": "billing"}; tables in any other schema are left
# alone. On PostgreSQL, autogenerate creates a schema the database lacks
# before its first table (and its downgrade drops it); SQLite has no schemas,
# so the review flags the table NOT PORTABLE (migrations/README).
SCHEMAS: set[str] | None = None

# Alembic's autogenerate plugins, the comparisons it makes. None: Alembic's
# default, ["alembic.autogenerate.*"]. Add "alembic.ext.checkconstraint_byname"
# to compare named CHECK constraints, or a comparator plugin of your own
# (Alembic's documentation, "Autogenerate plugins").
AUTOGENERATE_PLUGINS: list[str] | None = None

# Any other option of Alembic's context.configure(), such as a compare_type
# function. These win over the template's own options.
CONFIGURE_OPTIONS: dict[str, Any] = {}


def include_name(
    name: str | None, type_: str, parent_names: Mapping[str, str | None]
) -> bool:
    """Whether autogenerate reflects this schema, table, column, index or
    constraint of the database (Alembic's include_name); called for the objects
    that IGNORE_TABLES and SCHEMAS do not exclude already."""
    return True


def include_object(
    item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Whether autogenerate compares this object, from the models or the database
    (Alembic's include_object)."""
    return True
