"""Renames carry the names that the naming convention gives.

The project's metadata names every constraint and index after its table and
columns (extensions.py: pk_users, uq_users_email, ix_users_name,
fk_orders_user_id_users, ck_users_<name>), and PostgreSQL names a SERIAL or
identity column's sequence users_id_seq. No engine renames them when a
revision renames the table (op.rename_table) or a column
(alter_column(new_column_name=...)): the old names stay, `flask db check`
then reports the differences for ever, and a later revision that drops
uq_accounts_email by its convention name fails.

So Alembic's own implementations of rename_table and alter_column run, and
then every constraint, index and owned sequence of the table (and every
foreign key of another table that refers to it) whose name is exactly what the
convention gives for the old table and columns is renamed to what it gives for
the new ones. Names that do not follow the convention are left alone. The
names come from SQLAlchemy's own naming (a throw-away Table in a MetaData with
the target metadata's convention), so any convention the project writes is
followed. Per engine:

- PostgreSQL: ALTER TABLE ... RENAME CONSTRAINT, ALTER INDEX ... RENAME TO,
  ALTER SEQUENCE ... RENAME TO;
- MySQL/MariaDB: RENAME INDEX for unique and plain indexes; the primary key
  is always PRIMARY; a foreign key or a CHECK has no RENAME, so it is dropped
  and added again with its new name (the foreign key with the session's
  foreign_key_checks off, so InnoDB adds it in place instead of copying the
  table: its rows held it a statement earlier);
- SQLite: one batch rebuild of the table (Alembic's move and copy) from its
  reflected definition with the new names, since SQLite keeps constraint names
  in the table's SQL and cannot rename an index.

In a batch block, the names are carried when the block ends (batch mode
applies its operations there). With `flask db upgrade --sql` there is no
database to read the names from: the SQL carries a comment saying so.
"""

import copy
import logging
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations, ops
from alembic.operations.batch import BatchOperationsImpl
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import InvalidRequestError

log = logging.getLogger(__name__)

# Stands in for a CHECK constraint's own name (the convention's
# %(constraint_name)s), to find it inside a name the convention made.
_TOKEN = "\x00"
# Marks this module's wrappers, so that installing twice wraps once.
_WRAPPED = "_flask_safe_migrations_renames_wrapped"

_Implementation = Callable[[Operations, Any], None]
# MetaData.naming_convention: kind -> template (or a callable).
_Convention = Mapping[Any, Any]

# The names carried while a migration context runs: (schema, table, old) -> new.
_Carry = dict[tuple[str | None, str, str], str]
_CARRIED: "weakref.WeakKeyDictionary[MigrationContext, _Carry]" = (
    weakref.WeakKeyDictionary()
)
# The renames of each open batch block, carried when it ends.
_PENDING: "weakref.WeakKeyDictionary[BatchOperationsImpl, list[_Rename]]" = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class _Rename:
    """A table renamed (``table`` -> ``new_table``) or columns renamed in it
    (``columns``: old name -> new name; ``table`` == ``new_table``)."""

    table: str
    new_table: str
    schema: str | None
    columns: Mapping[str, str] = field(default_factory=dict)

    def old_column(self, name: str) -> str:
        """The name before the rename of the column now called ``name``."""
        for old, new in self.columns.items():
            if new == name:
                return old
        return name

    def describe(self) -> str:
        if self.table != self.new_table:
            return f"table {self.table} -> {self.new_table}"
        renamed = ", ".join(f"{o} -> {n}" for o, n in self.columns.items())
        return f"column {self.table}.{renamed}"


@dataclass(frozen=True)
class _Carried:
    """One name to carry: a ``kind`` of the naming convention (pk, uq, ix,
    ck, fk) or "seq", on ``table`` (its name now)."""

    kind: str
    table: str
    old: str
    new: str
    details: Mapping[str, Any]


def install() -> None:
    """Put the carrying of names behind Alembic's rename_table and
    alter_column (op and batch_op), behind whatever is installed already
    (guards.py's alter_column); and the redirection of a drop in front of
    drop_constraint and drop_index."""
    _wrap(ops.RenameTableOp, after=_table_renamed)
    _wrap(ops.AlterColumnOp, after=_column_renamed)
    _wrap(ops.DropConstraintOp, before=_redirect_drop)
    _wrap(ops.DropIndexOp, before=_redirect_drop)


def _wrap(
    operation_class: type[ops.MigrateOperation],
    before: Callable[[Operations, Any], Any] | None = None,
    after: Callable[[Any], _Rename | None] | None = None,
) -> None:
    # Operations has no public getter for an implementation: its dispatcher
    # is what Operations.invoke itself asks.
    previous: _Implementation = Operations._to_impl.dispatch(operation_class)
    previous = getattr(previous, _WRAPPED, previous)

    def implementation(operations: Operations, operation: Any) -> None:
        if before is not None:
            operation = before(operations, operation)
        previous(operations, operation)
        rename = after(operation) if after is not None else None
        if rename is not None:
            _carry_names(operations, rename)

    setattr(implementation, _WRAPPED, previous)
    Operations.implementation_for(operation_class, replace=True)(implementation)


def _table_renamed(operation: ops.RenameTableOp) -> _Rename | None:
    if operation.new_table_name == operation.table_name:
        return None
    return _Rename(operation.table_name, operation.new_table_name, operation.schema)


def _column_renamed(operation: ops.AlterColumnOp) -> _Rename | None:
    new = operation.modify_name
    if not new or new == operation.column_name:
        return None
    table = operation.table_name
    return _Rename(table, table, operation.schema, {operation.column_name: new})


def carried_by(
    convention: _Convention,
    table: str,
    renamed: Mapping[str, str],
    operations: Sequence[Any],
) -> set[int]:
    """The ids of the pairs, in autogenerate's ``operations`` on ``table``, of
    a dropped unique constraint or index and the one created in its place
    whose name renaming the columns (``renamed``: old -> new) carries anyway
    (the review's rename hint leaves them out)."""
    if not convention:
        return set()
    new_to_old = {new: old for old, new in renamed.items()}
    dropped: dict[str, Any] = {}
    for op in operations:
        if isinstance(op, ops.DropIndexOp) and op.index_name:
            dropped[str(op.index_name)] = op
        elif isinstance(op, ops.DropConstraintOp) and op.constraint_name:
            dropped[str(op.constraint_name)] = op
    pairs: set[int] = set()
    for op in operations:
        columns: list[str | None]
        if isinstance(op, ops.CreateUniqueConstraintOp):
            kind, name, columns = "uq", op.constraint_name, list(op.columns)
        elif isinstance(op, ops.CreateIndexOp):
            kind, name = "ix", op.index_name
            columns = [
                c if isinstance(c, str) else getattr(c, "name", None)
                for c in op.columns
            ]
        else:
            continue
        if not name or None in columns:
            continue  # unnamed, or an expression index
        after = [str(c) for c in columns]
        before = [new_to_old.get(c, c) for c in after]
        for old_name, drop in dropped.items():
            carried = _follow(
                convention,
                kind,
                old_name,
                (table, before, None, []),
                (table, after, None, []),
            )
            if carried == name and carried != old_name:
                pairs |= {id(op), id(drop)}
    return pairs


def _carry_names(operations: Operations, rename: _Rename) -> None:
    convention = _convention(operations)
    if not convention:
        return  # no convention, no names to follow
    impl = operations.impl
    if isinstance(impl, BatchOperationsImpl):
        _after_batch(impl, rename)
        return
    context = operations.migration_context
    if context.as_sql:
        # No database to read the names from; guessing them from the models
        # (which describe the newest revision, not this one) could write SQL
        # that fails. Say so where the DBA reads the SQL.
        message = (
            f"flask-safe-migrations: the {rename.describe()} rename does not"
            " rename the constraints, indexes and sequences named after the"
            " old name in --sql output (there is no database to read them"
            " from). Rename them by hand, or run `flask db upgrade` against"
            " the database."
        )
        log.warning(message)
        context.impl.static_output(f"-- {message}")
        return
    renamer = _RENAMERS.get(context.dialect.name)
    if renamer is None:  # an engine this module does not know: Alembic's alone
        log.warning(
            "The %s rename leaves the names of constraints and indexes as they"
            " are on %s.",
            rename.describe(),
            context.dialect.name,
        )
        return
    carried = _names_to_carry(operations.get_bind(), convention, rename)
    if carried:
        renamer(operations, rename.schema, carried)
        _CARRIED.setdefault(context, {}).update(
            {(rename.schema, each.table, each.old): each.new for each in carried}
        )


def _redirect_drop(operations: Operations, operation: Any) -> Any:
    """A drop, later in the revision, of a name a rename has just carried:
    the drop of the name it has now, if the old one is gone.

    Revisions written before renames carried names (the review's rename hint
    among them) rename the column and then drop the old convention name and
    create the new one themselves; a database built from them now would have
    no old name to drop. The drop takes the carried one, and the create that
    follows makes it again.
    """
    context = operations.migration_context
    carried = _CARRIED.get(context)
    if not carried or context.as_sql:
        return operation
    dropping_index = isinstance(operation, ops.DropIndexOp)
    name = operation.index_name if dropping_index else operation.constraint_name
    schema, table = operation.schema, operation.table_name
    found = [
        (owner, new)
        for (in_schema, owner, old), new in carried.items()
        if in_schema == schema and old == name and table in (None, owner)
    ]
    if len(found) != 1:
        return operation
    owner, new = found[0]
    try:
        if name in _names_on(operations.get_bind(), owner, schema):
            return operation  # made again since: the drop means it
    except sa.exc.NoSuchTableError:
        return operation  # the table is gone: Alembic's drop says so
    log.info("Dropping %s, the name %s was renamed to.", new, name)
    redirected = copy.copy(operation)
    if dropping_index:
        redirected.index_name = operations.f(new)
    else:
        redirected.constraint_name = operations.f(new)
    return redirected


def _names_on(bind: sa.Connection, table: str, schema: str | None) -> set[str]:
    """The names of ``table``'s constraints and indexes."""
    inspector = sa.inspect(bind)
    pk = inspector.get_pk_constraint(table, schema=schema)
    found = {
        pk.get("name"),
        *(c["name"] for c in inspector.get_unique_constraints(table, schema=schema)),
        *(i["name"] for i in inspector.get_indexes(table, schema=schema)),
        *(c["name"] for c in inspector.get_check_constraints(table, schema=schema)),
        *(f["name"] for f in inspector.get_foreign_keys(table, schema=schema)),
    }
    return {name for name in found if name}


def _convention(operations: Operations) -> _Convention:
    metadata = operations.migration_context.opts.get("target_metadata")
    if isinstance(metadata, (list, tuple)):
        metadata = metadata[0] if metadata else None
    if not isinstance(metadata, sa.MetaData):
        return {}
    return metadata.naming_convention


def _after_batch(batch: BatchOperationsImpl, rename: _Rename) -> None:
    """Carry the names once the batch block has applied its operations (at
    its end, in BatchOperationsImpl.flush, which Alembic calls on leaving the
    block; there is no hook after it, so this batch's flush is wrapped)."""
    pending = _PENDING.get(batch)
    if pending is None:
        pending = _PENDING[batch] = []
        flush = batch.flush

        def flush_then_carry() -> None:
            flush()
            for each in _PENDING.pop(batch, []):
                _carry_names(batch.operations, each)

        # setattr: mypy refuses an assignment to a method.
        setattr(batch, "flush", flush_then_carry)  # noqa: B010
    pending.append(rename)


# --- Which names ---------------------------------------------------------------


def _names_to_carry(
    bind: sa.Connection, convention: _Convention, rename: _Rename
) -> list[_Carried]:
    inspector = sa.inspect(bind)
    table, schema = rename.new_table, rename.schema
    old = rename.old_column
    carried: list[_Carried] = []

    def add(
        kind: str,
        name: str | None,
        reported: Sequence[str | None],
        owner: str = table,
        owner_old: str = rename.table,
        **details: Any,
    ) -> None:
        if not name or None in reported:
            return  # unnamed, or an expression index: nothing to follow
        columns = [str(c) for c in reported]
        referred = details.get("referred_table")
        referred_old = rename.table if referred == rename.new_table else referred
        referred_columns = details.get("referred_columns", [])
        if referred == rename.new_table:
            referred_old_columns = [old(c) for c in referred_columns]
        else:
            referred_old_columns = referred_columns
        own_columns = [old(c) for c in columns] if owner == table else columns
        before = (owner_old, own_columns, referred_old, referred_old_columns)
        after = (owner, columns, referred, referred_columns)
        # MySQL reports a unique index (Index(unique=True), which the
        # convention's "ix" names) among the unique constraints too.
        for each in ("uq", "ix") if kind in ("uq", "ix") else (kind,):
            new = _follow(convention, each, name, before, after)
            if new is not None:
                kind = each
                break
        if new is not None and new != name:
            details = {"columns": columns, **details}
            carried.append(_Carried(kind, owner, name, new, details))

    pk = inspector.get_pk_constraint(table, schema=schema)
    add("pk", pk.get("name"), pk.get("constrained_columns", []))
    unique = inspector.get_unique_constraints(table, schema=schema)
    for constraint in unique:
        add("uq", constraint["name"], constraint["column_names"])
    constraint_names = {c["name"] for c in unique}
    for index in inspector.get_indexes(table, schema=schema):
        if index["name"] in constraint_names or "duplicates_constraint" in index:
            continue  # a unique constraint's own index
        add(
            "ix",
            index["name"],
            index["column_names"],
            unique=index["unique"],
            dialect_options=index.get("dialect_options", {}),
        )
    for check in inspector.get_check_constraints(table, schema=schema):
        add("ck", check["name"], [], sqltext=check["sqltext"])
    if "fk" in convention or sa.ForeignKeyConstraint in convention:
        for other in inspector.get_table_names(schema=schema):
            for fk in inspector.get_foreign_keys(other, schema=schema):
                if other != table and fk["referred_table"] != table:
                    continue
                add(
                    "fk",
                    fk["name"],
                    fk["constrained_columns"],
                    owner=other,
                    owner_old=rename.table if other == table else other,
                    referred_table=fk["referred_table"],
                    referred_columns=fk["referred_columns"],
                    referred_schema=fk.get("referred_schema"),
                    options=fk.get("options", {}),
                )
    if bind.dialect.name == "postgresql":
        carried += _owned_sequences(bind, rename)
    return carried


def _follow(
    convention: _Convention,
    kind: str,
    name: str,
    before: tuple[str, list[str], str | None, list[str]],
    after: tuple[str, list[str], str | None, list[str]],
) -> str | None:
    """What the convention names the object named ``name`` after the rename,
    if ``name`` is what it gives before; else None (a name of the user's)."""
    if _name(convention, kind, *before) == name:
        return _name(convention, kind, *after)
    # A convention with %(constraint_name)s (CHECK constraints): the name
    # given in the model sits inside the convention's name.
    pattern = _name(convention, kind, *before, token=_TOKEN)
    if pattern is None or _TOKEN not in pattern:
        return None
    prefix, _, suffix = pattern.partition(_TOKEN)
    if (
        len(name) > len(prefix) + len(suffix)
        and name.startswith(prefix)
        and name.endswith(suffix)
    ):
        token = name[len(prefix) : len(name) - len(suffix)]
        return _name(convention, kind, *after, token=token)
    return None


def _name(
    convention: _Convention,
    kind: str,
    table: str,
    columns: list[str],
    referred: str | None,
    referred_columns: list[str],
    token: str | None = None,
) -> str | None:
    """The name SQLAlchemy gives, under ``convention``, to a ``kind`` of
    constraint or index on ``table`` (``columns``), or None if it gives none."""
    if kind == "seq":
        return None
    metadata = sa.MetaData(naming_convention=dict(convention))
    names = list(dict.fromkeys([*columns, *(c for c in referred_columns)]))
    owner = sa.Table(table, metadata, *(sa.Column(c, sa.types.NULLTYPE) for c in names))
    if referred is not None and referred != table:
        sa.Table(
            referred,
            metadata,
            *(sa.Column(c, sa.types.NULLTYPE) for c in referred_columns),
        )
    try:
        made: sa.Constraint | sa.Index
        if kind == "pk":
            made = sa.PrimaryKeyConstraint(*columns, name=token)
        elif kind == "uq":
            made = sa.UniqueConstraint(*columns, name=token)
        elif kind == "ck":
            made = sa.CheckConstraint(sa.true(), name=token)
        elif kind == "fk":
            made = sa.ForeignKeyConstraint(
                columns, [f"{referred}.{c}" for c in referred_columns], name=token
            )
        else:
            # Columns of a Table attach the index to it, which names it.
            made = sa.Index(token, *(owner.c[c] for c in columns))
            return _given(made.name)
        owner.append_constraint(made)
    except InvalidRequestError:
        return None  # the convention needs what this object does not have
    return _given(made.name)


def _given(name: Any) -> str | None:
    return str(name) if isinstance(name, sa.sql.elements.conv) else None


def _owned_sequences(bind: sa.Connection, rename: _Rename) -> list[_Carried]:
    """PostgreSQL's sequences of SERIAL and identity columns, named by its own
    rule (<table>_<column>_seq), carried as the table and columns are."""
    table = sa.table(rename.new_table, schema=rename.schema)
    qualified = bind.dialect.identifier_preparer.format_table(table)
    owned = bind.execute(
        sa.text(
            "SELECT s.relname, a.attname FROM pg_depend d"
            " JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
            " JOIN pg_attribute a"
            "  ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
            " WHERE d.classid = 'pg_class'::regclass"
            " AND d.refclassid = 'pg_class'::regclass"
            " AND d.deptype IN ('a', 'i')"
            " AND d.refobjid = CAST(:table AS regclass)"
        ),
        {"table": qualified},
    ).all()
    carried = []
    for sequence, column in owned:
        old = f"{rename.table}_{rename.old_column(column)}_seq"
        new = f"{rename.new_table}_{column}_seq"
        if sequence == old and new != old:
            carried.append(_Carried("seq", rename.new_table, old, new, {}))
    return carried


# --- Renaming them, per engine -------------------------------------------------


def _rename_postgresql(
    operations: Operations, schema: str | None, carried: list[_Carried]
) -> None:
    quote = operations.impl.dialect.identifier_preparer.quote
    prefix = f"{quote(schema)}." if schema else ""
    for each in carried:
        old, new = quote(each.old), quote(each.new)
        if each.kind == "ix":
            operations.execute(f"ALTER INDEX {prefix}{old} RENAME TO {new}")
        elif each.kind == "seq":
            operations.execute(f"ALTER SEQUENCE {prefix}{old} RENAME TO {new}")
        else:  # a constraint; a unique or primary key's index follows it
            table = f"{prefix}{quote(each.table)}"
            operations.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}")


def _rename_mysql(
    operations: Operations, schema: str | None, carried: list[_Carried]
) -> None:
    quote = operations.impl.dialect.identifier_preparer.quote
    prefix = f"{quote(schema)}." if schema else ""
    for each in carried:
        table = f"{prefix}{quote(each.table)}"
        old, new = quote(each.old), quote(each.new)
        if each.kind in ("uq", "ix"):
            operations.execute(f"ALTER TABLE {table} RENAME INDEX {old} TO {new}")
        elif each.kind == "ck":
            # op.f(): the names are final, not a token of the convention.
            operations.drop_constraint(
                operations.f(each.old), each.table, "check", schema=schema
            )
            operations.create_check_constraint(
                operations.f(each.new),
                each.table,
                each.details["sqltext"],
                schema=schema,
            )
        elif each.kind == "fk":
            _readd_mysql_foreign_key(operations, schema, each)
        # "pk": MySQL and MariaDB call every primary key PRIMARY.


def _readd_mysql_foreign_key(
    operations: Operations, schema: str | None, fk: _Carried
) -> None:
    details = fk.details
    quote = operations.impl.dialect.identifier_preparer.quote
    table = (f"{quote(schema)}." if schema else "") + quote(fk.table)
    indexes = sa.inspect(operations.get_bind()).get_indexes(fk.table, schema=schema)
    with _foreign_key_checks_off(operations):
        operations.drop_constraint(
            operations.f(fk.old), fk.table, "foreignkey", schema=schema
        )
        if any(index["name"] == fk.old for index in indexes):
            # The index InnoDB made for the key, named after it.
            operations.execute(
                f"ALTER TABLE {table} RENAME INDEX {quote(fk.old)} TO {quote(fk.new)}"
            )
        options = details["options"]
        operations.create_foreign_key(
            operations.f(fk.new),
            fk.table,
            details["referred_table"],
            details["columns"],
            details["referred_columns"],
            onupdate=options.get("onupdate"),
            ondelete=options.get("ondelete"),
            deferrable=options.get("deferrable"),
            initially=options.get("initially"),
            source_schema=schema,
            referent_schema=details["referred_schema"],
        )


@contextmanager
def _foreign_key_checks_off(operations: Operations) -> Iterator[None]:
    """InnoDB adds a foreign key in place, without copying the table, only
    with foreign_key_checks off; the rows held the same key until the drop
    just before, so there is nothing to check."""
    bind = operations.get_bind()
    before = bind.exec_driver_sql("SELECT @@SESSION.foreign_key_checks").scalar()
    bind.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    try:
        yield
    finally:
        bind.exec_driver_sql(f"SET SESSION foreign_key_checks = {int(before or 0)}")


def _rename_sqlite(
    operations: Operations, schema: str | None, carried: list[_Carried]
) -> None:
    """Rebuild each table whose names change (Alembic's batch move and copy),
    from its reflected definition with the new names: SQLite keeps the names
    of constraints in the table's SQL and has no ALTER INDEX."""
    impl = operations.migration_context.impl
    for table in dict.fromkeys(each.table for each in carried):
        names = {each.old: each.new for each in carried if each.table == table}
        reflected = sa.Table(
            table,
            sa.MetaData(),
            schema=schema,
            autoload_with=operations.get_bind(),
            # As batch mode reflects a table (BatchOperationsImpl).
            listeners=[("column_reflect", impl.autogen_column_reflect)],
        )
        items: list[sa.Constraint | sa.Index] = [
            *reflected.constraints,
            *reflected.indexes,
        ]
        for item in items:
            if isinstance(item.name, str) and item.name in names:
                item.name = sa.sql.elements.conv(names[item.name])
        with operations.batch_alter_table(
            table, schema=schema, copy_from=reflected, recreate="always"
        ):
            pass


_RENAMERS: dict[str, Callable[[Operations, str | None, list[_Carried]], None]] = {
    "postgresql": _rename_postgresql,
    "mysql": _rename_mysql,
    "mariadb": _rename_mysql,
    "sqlite": _rename_sqlite,
}
