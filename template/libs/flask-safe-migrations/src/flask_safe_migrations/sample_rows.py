"""Rows in every table, made from the schema itself (for the migration tests).

Many migrations fail only on a table that holds rows: a NOT NULL column added
without a server default, a unique constraint over duplicates, a foreign key
over orphans, a cast the data does not fit. The migration tests put rows made
here in every empty table and in the tables a revision names before each step,
so such a migration fails on the developer's machine instead of in production.

The rows follow the reflected schema: a value of each column's type, within
its length; NOT NULL columns filled; parents before children, each foreign key
pointing at a real row; the values an ENUM or an `IN (...)` CHECK constraint
allows. Values differ from row to row only where the schema demands it: in the
columns a primary key, a unique constraint or a unique index covers. The rows
of one fill share every other value (foreign keys included: they point at the
same parent row), as production's rows do, so a later revision that makes such
a column unique fails on them with the guard's message naming the duplicates
(guards.py) instead of in production. A project that needs realistic values
passes ``customise``: it returns, for a table and a serial number, the values
to use instead (see migrations/README).
"""

import datetime
import decimal
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy.schema import sort_tables_and_constraints

# customise(table, n) -> values that replace the made ones (or None).
Customise = Callable[[sa.Table, int], Mapping[str, Any] | None]

ROWS_PER_TABLE = 2
EPOCH = datetime.datetime(2024, 1, 1)


class CannotMakeRows(Exception):
    """A table this module cannot fill on its own."""


# What a fill with tables reflected earlier raises if they changed since.
_STALE = (CannotMakeRows, sa.exc.DBAPIError)


def table_names(connection: sa.Connection) -> list[str]:
    """The tables of the database (default schema), without Alembic's own."""
    names = sa.inspect(connection).get_table_names()
    return [name for name in names if name != "alembic_version"]


def reflect(
    connection: sa.Connection, only: Iterable[str] | None = None
) -> sa.MetaData:
    """The tables of the database, without Alembic's own: all of them, or those
    in ``only`` that exist and the tables their foreign keys point at."""
    metadata = sa.MetaData()
    if only is None:
        metadata.reflect(connection)
    else:
        existing = set(table_names(connection))
        metadata.reflect(connection, only=[n for n in only if n in existing])
    if "alembic_version" in metadata.tables:
        metadata.remove(metadata.tables["alembic_version"])
    return metadata


def named_in(source: str, names: Iterable[str]) -> set[str]:
    """The names among ``names`` that ``source`` (a revision's code) mentions:
    the tables a revision can change, as it has to name them."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", source))
    return {name for name in names if name in words}


def count_rows(engine: sa.Engine) -> dict[str, int]:
    """The number of rows in each table, in one query (no reflection: the
    migration tests count before and after every step)."""
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        names = table_names(connection)
        quote = connection.dialect.identifier_preparer.quote
        # Plain SQL: compiling a new UNION for every step costs more than running
        # it. SQLite allows 500 SELECTs in one UNION; each carries its position.
        for start in range(0, len(names), 200):
            chunk = names[start : start + 200]
            sql = " UNION ALL ".join(
                f"SELECT {i}, COUNT(*) FROM {quote(name)}"
                for i, name in enumerate(chunk)
            )
            for i, count in connection.exec_driver_sql(sql):
                counts[chunk[i]] = count
    return counts


def delete_all_rows(engine: sa.Engine) -> None:
    """Empty every table (foreign keys may point every way: checks are off).
    Only the tables that hold rows are touched."""
    full = [table for table, count in count_rows(engine).items() if count]
    if not full:
        return
    with engine.begin() as connection:
        tables = [sa.table(name) for name in full]
        if connection.dialect.name == "postgresql":
            names = ", ".join(
                connection.dialect.identifier_preparer.format_table(t) for t in tables
            )
            # CASCADE: an empty table that points at these is emptied anyway.
            connection.exec_driver_sql(f"TRUNCATE {names} CASCADE")
            return
        checks = {
            "sqlite": ("PRAGMA defer_foreign_keys=ON", None),
            "mysql": ("SET FOREIGN_KEY_CHECKS=0", "SET FOREIGN_KEY_CHECKS=1"),
            "mariadb": ("SET FOREIGN_KEY_CHECKS=0", "SET FOREIGN_KEY_CHECKS=1"),
        }
        off, on = checks.get(connection.dialect.name, (None, None))
        if off:
            connection.exec_driver_sql(off)
        for table in tables:
            connection.execute(sa.delete(table))
        if on:
            connection.exec_driver_sql(on)


class SampleRows:
    """Adds ROWS_PER_TABLE new rows to every table each time it fills them."""

    def __init__(self, customise: Customise | None = None) -> None:
        self.customise = customise
        self.serial = 0  # across fills, so that every value is new
        # The tables reflected at the last two schema states (by the revisions
        # the database is at): the walk goes back and forth between two, and
        # reflecting (a dozen catalog queries on a server) is a fill's main cost.
        self._reflected: dict[tuple[str, ...], sa.MetaData] = {}

    def fill(
        self, engine: sa.Engine, only: Iterable[str] | None = None
    ) -> dict[str, int]:
        """Add rows to every table, or to those in ``only`` (and the tables they
        point at), in one transaction. Returns how many, by table."""
        if only is None:
            with engine.begin() as connection:
                return self._fill(connection, [*reflect(connection).tables.values()])
        only = set(only)
        try:
            with engine.begin() as connection:
                return self._fill(connection, self._tables(connection, only))
        except _STALE:
            # A table reflected at the same revision may differ after all (a
            # downgrade that did not undo all of its upgrade): reflect again.
            self._reflected.clear()
            with engine.begin() as connection:
                return self._fill(connection, self._tables(connection, only))

    def _tables(self, connection: sa.Connection, only: set[str]) -> list[sa.Table]:
        """The tables in ``only`` that exist, and the ones they point at."""
        heads = tuple(
            sorted(MigrationContext.configure(connection).get_current_heads())
        )
        if heads not in self._reflected:
            self._reflected = {
                **dict(list(self._reflected.items())[-1:]),
                heads: sa.MetaData(),
            }
        metadata = self._reflected[heads]
        existing = set(table_names(connection))
        missing = sorted((only & existing) - set(metadata.tables))
        if missing:
            metadata.reflect(connection, only=missing)
        # With the tables they point at, which reflect() brought in.
        tables: dict[str, sa.Table] = {}
        todo = [metadata.tables[name] for name in sorted(only & existing)]
        while todo:
            table = todo.pop()
            if table.name not in tables:
                tables[table.name] = table
                todo += [fk.referred_table for fk in table.foreign_key_constraints]
        return list(tables.values())

    def _fill(
        self, connection: sa.Connection, tables: list[sa.Table]
    ) -> dict[str, int]:
        inserted: dict[str, list[dict[str, Any]]] = {}
        for table in parents_first(tables):
            inserted[table.name] = self._fill_table(connection, table, inserted)
        return {table: len(rows) for table, rows in inserted.items()}

    def _fill_table(
        self,
        connection: sa.Connection,
        table: sa.Table,
        inserted: Mapping[str, list[dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        rows = []
        unique = unique_columns(table)
        shared = self.serial + 1  # the other columns' values: the first row's
        for index in range(ROWS_PER_TABLE):
            self.serial += 1
            row = self._make_row(connection, table, inserted, index, unique, shared)
            if self.customise is not None:
                row.update(self.customise(table, self.serial) or {})
            try:  # a failure rolls back the whole fill
                result = connection.execute(sa.insert(table).values(row))
            except sa.exc.DBAPIError as exc:
                raise CannotMakeRows(
                    f"The migration tests could not add a row to the table"
                    f" {table.name!r} ({str(exc.orig).strip().splitlines()[0]}),"
                    f" with the values {row!r}. Give them values that fit: a"
                    " sample_row() function in tests/migration_rows.py (see"
                    " migrations/README)."
                ) from None
            if result.inserted_primary_key is not None:
                row.update(result.inserted_primary_key._asdict())
            rows.append(row)
        return rows

    def _make_row(
        self,
        connection: sa.Connection,
        table: sa.Table,
        inserted: Mapping[str, list[dict[str, Any]]],
        index: int,
        unique: set[str],
        shared: int,
    ) -> dict[str, Any]:
        """The values of the ``index``-th row of this fill: new ones in the
        ``unique`` columns, the fill's ``shared`` ones in the others."""
        row: dict[str, Any] = {}
        for column in table.columns:
            if column is table.autoincrement_column or column.computed is not None:
                continue
            n = self.serial if column.name in unique else shared
            row[column.name] = self._value(table, column, n)
        for fk in table.foreign_key_constraints:
            distinct = any(column.name in unique for column in fk.columns)
            parent = index if distinct else 0
            row.update(self._parent_key(connection, fk, inserted, parent))
        return row

    def _parent_key(
        self,
        connection: sa.Connection,
        fk: sa.ForeignKeyConstraint,
        inserted: Mapping[str, list[dict[str, Any]]],
        index: int,
    ) -> dict[str, Any]:
        """Values for ``fk``'s columns that point at a row of its parent table."""
        referred = [element.column for element in fk.elements]
        columns = [element.parent.name for element in fk.elements]
        parent = fk.referred_table
        candidates = [
            row
            for row in inserted.get(parent.name, [])
            if all(column.name in row for column in referred)
        ]
        if candidates:  # the parent's rows of this fill: new rows, new pairs
            chosen = candidates[index % len(candidates)]
            return {
                name: chosen[column.name]
                for name, column in zip(columns, referred, strict=True)
            }
        # A parent filled later (a cycle of foreign keys) or this very table.
        existing = connection.execute(sa.select(*referred).limit(1)).first()
        if existing is not None:
            return dict(zip(columns, existing, strict=True))
        return dict.fromkeys(columns)  # NULL, the only choice left

    def _value(self, table: sa.Table, column: sa.Column[Any], n: int) -> Any:
        allowed = allowed_values(table, column)
        if allowed:
            return allowed[n % len(allowed)]
        column_type = column.type
        if isinstance(column_type, sa.JSON):
            return {"n": n}
        try:
            python_type = column_type.python_type
        except NotImplementedError:
            python_type = str
        if python_type is bool:
            return n % 2 == 0
        if python_type is int:
            return n % small_int_limit(column_type)
        if python_type in (float, decimal.Decimal):
            return decimal.Decimal(n % number_limit(column_type))
        if python_type is datetime.datetime:
            return EPOCH + datetime.timedelta(minutes=n)
        if python_type is datetime.date:
            return EPOCH.date() + datetime.timedelta(days=n)
        if python_type is datetime.time:
            return datetime.time(n % 24, n % 60)
        if python_type is datetime.timedelta:
            return datetime.timedelta(seconds=n)
        if python_type is uuid.UUID:
            return uuid.UUID(int=n)
        if python_type is bytes:
            return str(n).encode()
        if python_type is dict:
            return {"n": n}
        if python_type is list:
            return []
        length = getattr(column_type, "length", None)
        return short_text(n, length)


def unique_columns(table: sa.Table) -> set[str]:
    """The columns whose values must differ from row to row: those a primary
    key, a unique constraint or a unique index covers (an expression index,
    such as one on lower(email): the columns it names)."""
    names = {column.name for column in table.primary_key.columns}
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            names |= {column.name for column in constraint.columns}
    for index in table.indexes:
        if index.unique:
            named = " ".join(str(expression) for expression in index.expressions)
            names |= {column.name for column in index.columns}
            names |= {
                column.name
                for column in table.columns
                if re.search(rf"\b{re.escape(column.name)}\b", named)
            }
    return names


def parents_first(tables: list[sa.Table]) -> list[sa.Table]:
    """The tables, each after the tables its NOT NULL foreign keys point at.

    A cycle of foreign keys is broken at a nullable one (its rows then point at
    an earlier fill's rows, or hold NULL). Unlike metadata.sorted_tables, this
    does not warn about cycles.
    """

    def keep_nullable_out(fk: sa.ForeignKeyConstraint) -> bool | None:
        return None if all(column.nullable for column in fk.columns) else False

    try:
        order = sort_tables_and_constraints(tables, filter_fn=keep_nullable_out)  # type: ignore[no-untyped-call]
    except sa.exc.CircularDependencyError:  # NOT NULL all the way round
        order = sort_tables_and_constraints(tables)  # type: ignore[no-untyped-call]
    return [table for table, _ in order if table is not None]


def small_int_limit(column_type: sa.types.TypeEngine[Any]) -> int:
    """A bound below the largest value of an integer type (with room to spare)."""
    if type(column_type).__name__ == "TINYINT":  # MySQL's, and its booleans
        return 100
    if isinstance(column_type, sa.SmallInteger):
        return 30_000
    return 2_000_000_000


def number_limit(column_type: sa.types.TypeEngine[Any]) -> int:
    """A bound on whole numbers that NUMERIC(precision, scale) holds."""
    precision = getattr(column_type, "precision", None)
    scale = getattr(column_type, "scale", None) or 0
    if precision is None:
        return 1_000
    return int(10 ** max(int(precision) - int(scale), 0))


def short_text(n: int, length: int | None) -> str:
    """A text that differs for every ``n`` and fits ``length`` characters."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        n, digit = divmod(n, len(digits))
        text = digits[digit] + text
        if n == 0:
            break
    word = f"sample {text}"
    if length is None:
        # Valid JSON as well: MariaDB's JSON columns are LONGTEXT with a
        # json_valid() CHECK that reflection does not report.
        return json.dumps(word)
    return word if len(word) <= length else text[-length:]


def allowed_values(table: sa.Table, column: sa.Column[Any]) -> list[Any]:
    """The values an ENUM type or an IN (...) CHECK constraint allows."""
    enums = getattr(column.type, "enums", None)
    if enums:
        return list(enums)
    for check in table.constraints:
        if isinstance(check, sa.CheckConstraint):
            text = str(check.sqltext)
            if re.search(rf"\b{re.escape(column.name)}\b", text) and re.search(
                r"\bIN\b|\bANY\b", text, re.IGNORECASE
            ):
                return re.findall(r"'((?:[^']|'')*)'", text)
    return []
