"""Squash the history up to a revision into one baseline revision
(`flask db-baseline REVISION`; migrations/README, "Squashing the history").

The baseline keeps REVISION's id and has no down_revision: a database at
REVISION or past it carries on untouched, and a new database gets the same
schema from one file. It is made, and checked, before anything is written:

1. refuse what would strand a database or lose work: an unknown revision, one
   that is not a cut point of the history, a deployed database that has not
   reached it, revisions that change data (a schema cannot say what they did);
2. build the schema at REVISION in a scratch database by running the
   migrations, reflect it, and write it as a revision with Alembic's own
   autogenerate against an empty database, rendered by rendering.py so that
   it runs on every engine;
3. build a second scratch database from the baseline alone and compare the two;
4. only then write versions/<date>-<REVISION>_baseline.py and move the
   revisions it replaces to migrations/squashed/<REVISION>/.
"""

import ast
import contextlib
import io
import shutil
import tempfile
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata, produce_migrations
from alembic.autogenerate.api import AutogenContext
from alembic.autogenerate.render import _render_cmd_body
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import conv

from . import comparison, errors, rendering

VERSION_TABLE = "alembic_version"
# Calls in a revision's upgrade that work on rows, which a schema cannot carry.
DATA_CALLS = {"execute", "bulk_insert", "get_bind"}


@dataclass(frozen=True)
class Plan:
    """What a baseline at ``revision`` replaces and what stays."""

    revision: Script
    squashed: list[Script]  # the revision and its ancestors
    later: list[Script]  # its descendants: they keep pointing at it


def plan(script: ScriptDirectory, revision: str) -> Plan:
    """The squash at ``revision``; refused unless it is a cut point: every
    revision is either an ancestor of it (or it) or a descendant."""
    try:
        found = script.get_revision(revision)
    except CommandError as exc:
        raise click.ClickException(f"No revision {revision!r}: {exc}") from None
    if found is None:
        raise click.ClickException(f"No revision {revision!r} in migrations/versions/.")
    everything = {s.revision: s for s in script.walk_revisions()}
    parents = {rev: _parents(script, s) for rev, s in everything.items()}
    children: dict[str, set[str]] = {rev: set() for rev in everything}
    for rev, ups in parents.items():
        for parent in ups:
            children[parent].add(rev)
    squashed = _reach(found.revision, parents)
    later = _reach(found.revision, children) - {found.revision}
    apart = sorted(set(everything) - squashed - later)
    if apart:
        raise click.ClickException(
            f"{found.revision} is not a cut point of the history: revisions"
            f" {', '.join(apart[:5])} are neither before it nor after it (a"
            " branch that forked before it and merges after it). A baseline"
            f" there would lose them. Pick a revision that every branch has"
            " passed, such as the merge revision after it (`flask db history`)."
        )
    for rev in sorted(later):
        old = sorted(p for p in parents[rev] if p in squashed - {found.revision})
        if old:
            raise click.ClickException(
                f"Revision {rev}, after {found.revision}, also points at"
                f" {', '.join(old)}, which the baseline replaces. Pick a"
                f" revision at or after {rev} (`flask db history`)."
            )
    order = [s for s in reversed(list(script.walk_revisions()))]
    return Plan(
        revision=found,
        squashed=[s for s in order if s.revision in squashed],
        later=[s for s in order if s.revision in later],
    )


def _parents(script: ScriptDirectory, revision: Script) -> set[str]:
    """The revisions ``revision`` builds on: down_revision and depends_on."""
    names = [*_tuple(revision.down_revision), *_tuple(revision.dependencies)]
    found = set()
    for name in names:
        parent = script.get_revision(name)
        if parent is not None:
            found.add(parent.revision)
    return found


def _tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _reach(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for other in edges[todo.pop()] - seen:
            seen.add(other)
            todo.append(other)
    return seen


def data_steps(scripts: Iterable[Script]) -> list[str]:
    """The revisions whose upgrade changes data (op.execute, op.bulk_insert,
    op.get_bind) or migrates a bind (an upgrade_<bind>() with a body): a
    baseline rebuilt from the schema would not do it for new databases."""
    found = []
    for script in scripts:
        path = Path(script.path)
        reasons: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            name = getattr(node, "name", "")
            if name.startswith("downgrade"):
                continue
            if (
                isinstance(node, ast.FunctionDef)
                and name.startswith("upgrade_")
                and not _empty(node)
            ):
                reasons.add(f"{name}()")
            for call in ast.walk(node):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr in DATA_CALLS
                ):
                    reasons.add(f"{call.func.attr}()")
        if reasons:
            found.append(f"{path.name} ({', '.join(sorted(reasons))})")
    return found


def _empty(function: ast.FunctionDef) -> bool:
    return all(
        isinstance(s, ast.Pass)
        or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        for s in function.body
    )


def check_database(engine: sa.Engine, squash: Plan) -> str:
    """Refuse if the database ``engine`` names has not reached the revision
    (the baseline would strand it); say where it is otherwise. Raises
    DBAPIError when the database cannot be reached."""
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    where = engine.url.render_as_string(hide_password=True)
    target = squash.revision.revision
    passed = {target} | {s.revision for s in squash.later}
    if not current:
        return f"The database at {where} has no revision yet: nothing to strand."
    known = {s.revision for s in squash.squashed} | passed
    if current - known:
        raise click.ClickException(
            f"The database at {where} is at {', '.join(sorted(current - known))},"
            " a revision this code does not know (a newer release migrated it)."
            " Run `flask db-baseline` from the code that has that revision."
        )
    behind = sorted(current - passed)
    if behind:
        raise click.ClickException(
            f"The database at {where} is at {', '.join(behind)}, before"
            f" {target}: once the revisions up to {target} are replaced by a"
            " baseline, no revision could take it there. Upgrade it first"
            f" (`flask db upgrade {target}` or later), and every other deployed"
            " database too, then run `flask db-baseline` again."
        )
    return f"The database at {where} is at {', '.join(sorted(current))}: kept."


def connection_error(exc: DBAPIError, engine: sa.Engine) -> click.ClickException:
    return click.ClickException(
        errors.describe_connection_error(exc, engine.url)
        + " `flask db-baseline` checks that the database has passed the revision"
        " it squashes. Without it, pass --skip-database-check, once you have"
        " checked every deployed database with `flask db current`."
    )


# --- building and comparing schemas -------------------------------------------


@contextlib.contextmanager
def scratch_urls(scratch_url: str | None) -> Iterator[tuple[str, str]]:
    """Two empty scratch databases: temporary SQLite files, or the one server
    database ``scratch_url`` names, used twice and emptied after each use."""
    if scratch_url is None:
        with tempfile.TemporaryDirectory(prefix="db-baseline-") as directory:
            yield (
                f"sqlite:///{Path(directory) / 'history.db'}",
                f"sqlite:///{Path(directory) / 'baseline.db'}",
            )
        return
    engine = sa.create_engine(scratch_url, poolclass=NullPool)
    try:
        tables = sa.inspect(engine).get_table_names()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise click.ClickException(
            f"Cannot use the scratch database"
            f" {engine.url.render_as_string(hide_password=True)}: {reason}."
        ) from None
    finally:
        engine.dispose()
    if tables:
        raise click.ClickException(
            f"The scratch database {engine.url.render_as_string(hide_password=True)}"
            f" has tables ({', '.join(sorted(tables)[:5])}). --scratch-url must"
            " name an empty, throw-away database: `flask db-baseline` builds"
            " schemas in it and drops them."
        )
    yield scratch_url, scratch_url


def build(config: Config, url: str, revision: str) -> sa.MetaData:
    """Run the migrations up to ``revision`` in the empty database ``url``
    (through env.py, as `flask db upgrade` does) and reflect the result."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            try:
                command.upgrade(config, revision)
            except (CommandError, DBAPIError) as exc:
                raise click.ClickException(
                    f"Building the schema at {revision} in the scratch database"
                    f" ({engine.dialect.name}) failed: {_first_line(exc)}"
                ) from None
            finally:
                del config.attributes["connection"]
            connection.commit()
            return reflect(connection)
    finally:
        engine.dispose()


def reflect(connection: sa.Connection) -> sa.MetaData:
    """The schema of the database, without Alembic's version table; constraint
    and index names kept as they are (op.f() in the rendered code)."""
    metadata = sa.MetaData()
    with rendering.cycles_expected():
        metadata.reflect(connection)
    metadata.remove(metadata.tables[VERSION_TABLE])
    for table in metadata.tables.values():
        for column in table.columns:
            # PostgreSQL reports a SERIAL key's sequence as its default: the
            # models (and so the baseline) leave it to autoincrement, which
            # every engine creates its own way.
            default = getattr(column.server_default, "arg", None)
            if (
                column.primary_key
                and column.autoincrement is True
                and str(default).startswith("nextval(")
            ):
                column.server_default = None
        # MySQL/MariaDB report the index behind a unique constraint or a
        # foreign key as an index too: it comes with its constraint.
        constraint_names = {c.name for c in table.constraints if c.name}
        for index in list(table.indexes):
            if index.name in constraint_names:
                table.indexes.remove(index)
        for constraint in table.constraints:
            if isinstance(constraint.name, str):
                constraint.name = conv(constraint.name)
        for index in table.indexes:
            if isinstance(index.name, str):
                index.name = conv(index.name)
    return metadata


def take_model_types(
    schema: sa.MetaData, models: sa.MetaData, context: MigrationContext
) -> None:
    """Use the model's type for a column whose type the database reports as
    the same (so `flask db check` would not tell them apart there).

    SQLite records less than the servers do: a DateTime's timezone, a native
    ENUM, a UUID are a DATETIME, a VARCHAR, a CHAR(32) to it. Where a column
    still has its model's name and that type, the model's type is written,
    which every engine creates as the model means (a later revision that
    changed the type sets its own type anyway).
    """
    for table in schema.tables.values():
        model = models.tables.get(table.key)
        if model is None:
            continue
        for column in table.columns:
            wanted = model.columns.get(column.key)
            if wanted is None or getattr(wanted.type, "create_constraint", False):
                continue  # an Enum or Boolean with its own CHECK: as reflected
            if not context.impl.compare_type(column, wanted):
                column.type = wanted.type


def render(
    schema: sa.MetaData,
    models: sa.MetaData,
    url: str,
    squash: Plan,
    steps: list[str],
) -> dict[str, str]:
    """The upgrade and downgrade that build ``schema`` from an empty database,
    written by autogenerate (against the empty database ``url``) with the
    project's portable rendering; what script.py.mako takes."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "target_metadata": schema,
                    "render_item": rendering.render_item,
                    "render_as_batch": True,
                    "compare_type": True,
                    "sqlalchemy_module_prefix": "sa.",
                    "alembic_module_prefix": "op.",
                },
            )
            take_model_types(schema, models, context)
            with rendering.cycles_expected():
                script = produce_migrations(context, schema)
            rendering.arrange(script, schema)
            # Alembic's own renderer, as rendering.check_names() uses it: the
            # public render_python_code() does not return the imports it adds.
            autogen_context = AutogenContext(context, autogenerate=False)
            upgrade, downgrade = script.upgrade_ops, script.downgrade_ops
            assert upgrade is not None and downgrade is not None
            upgrades = _about(squash, steps) + _render_cmd_body(
                upgrade, autogen_context
            )
            downgrades = _render_cmd_body(downgrade, autogen_context)
    finally:
        engine.dispose()
    return {
        "upgrades": _indent(upgrades),
        "downgrades": _indent(downgrades),
        "imports": "\n".join(sorted(autogen_context.imports)),
    }


def _about(squash: Plan, steps: list[str]) -> str:
    """The comment that opens the baseline's upgrade()."""
    target = squash.revision.revision
    text = (
        f"The schema at {target}, built by {len(squash.squashed)} revisions"
        f" (`flask db-baseline`; they are in migrations/squashed/{target}/)."
    )
    if steps:
        text += (
            " Their data steps are not here; add what a new database needs:"
            f" {'; '.join(steps)}."
        )
    lines = textwrap.wrap(text, 74)
    return "".join(f"# {line}\n" for line in lines)


def _indent(code: str) -> str:
    return "\n    ".join(code.strip().splitlines())


def generate(
    config: Config, directory: Path, revision: str, code: dict[str, str]
) -> Path:
    """Write the baseline into a migrations folder of its own under
    ``directory`` (env.py and script.py.mako copied), through Alembic, so its
    file name, template and post-write hooks are the project's."""
    source = Path(ScriptDirectory.from_config(config).dir)
    target = directory / "migrations"
    (target / "versions").mkdir(parents=True)
    for name in ("env.py", "script.py.mako"):
        shutil.copy(source / name, target / name)
    config.set_main_option("script_location", str(target))
    script = ScriptDirectory.from_config(config)
    try:
        # Quiet: Alembic announces the temporary file it writes.
        with contextlib.redirect_stdout(io.StringIO()):
            written = script.generate_revision(
                revision,
                "baseline",
                config=config,  # script.py.mako reads its attributes
                imports=code["imports"],
                upgrades=code["upgrades"],
                downgrades=code["downgrades"],
            )
    except CommandError as exc:
        raise click.ClickException(
            f"Nothing written: writing the baseline failed: {exc}"
        ) from None
    assert written is not None
    return Path(written.path)


def compare(config: Config, url: str, expected: sa.MetaData) -> list[str]:
    """Build the baseline alone (``config``'s migrations folder) in the empty
    database ``url`` and list how its schema differs from ``expected``; then
    downgrade it and list what the downgrade leaves behind."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            try:
                command.upgrade(config, "head")
                connection.commit()
                context = MigrationContext.configure(
                    connection,
                    opts={
                        "compare_type": True,
                        "include_name": _not_version_table,
                        **comparison.options({}),
                    },
                )
                found = compare_metadata(context, expected)
                differences = [_describe(d) for d in found]
                command.downgrade(config, "base")
                connection.commit()
            except (CommandError, DBAPIError) as exc:
                return [f"the baseline does not run: {_first_line(exc)}"]
            finally:
                config.attributes.pop("connection", None)
            left = set(sa.inspect(connection).get_table_names()) - {VERSION_TABLE}
            differences += [f"downgrade() leaves table {name}" for name in sorted(left)]
            drop_all(connection)
    finally:
        engine.dispose()
    return differences


def _not_version_table(name: str | None, type_: str, _: Any) -> bool:
    return not (type_ == "table" and name == VERSION_TABLE)


def _describe(difference: Any) -> str:
    if isinstance(difference, list):  # a column's changes come in a list
        return "; ".join(_describe(d) for d in difference)
    kind, *rest = difference
    names = [getattr(r, "name", None) or str(r) for r in rest if r is not None]
    return f"{kind.replace('_', ' ')} {' '.join(str(n) for n in names[:3])}".strip()


def empty(url: str) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            drop_all(connection)
    finally:
        engine.dispose()


def drop_all(connection: sa.Connection) -> None:
    """Empty a scratch database."""
    metadata = sa.MetaData()
    with rendering.cycles_expected():
        metadata.reflect(connection)
        metadata.drop_all(connection)
    connection.commit()


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- the command's work ---------------------------------------------------------


def squash(
    db: SQLAlchemy,
    config: Config,
    revision: str,
    *,
    drop_data_steps: bool = False,
    skip_database_check: bool = False,
    scratch_url: str | None = None,
) -> list[str]:
    """Replace the history up to ``revision`` with a baseline; the lines to
    report. Raises click.ClickException, having written nothing, when unsafe."""
    if len(db.metadatas) > 1 or any(t.schema for t in db.metadata.tables.values()):
        raise click.ClickException(
            "This project's models use binds or schemas other than the default:"
            " `flask db-baseline` squashes the history of one database in its"
            " default schema only. Keep the history as it is (migrations/README,"
            ' "Squashing the history").'
        )
    config.attributes["configure_logger"] = False  # a command's output, not logs
    script = ScriptDirectory.from_config(config)
    chosen = plan(script, revision)
    target = chosen.revision.revision
    report = []
    steps = data_steps(chosen.squashed)
    if steps and not drop_data_steps:
        raise click.ClickException(
            f"These revisions up to {target} change data, which a baseline"
            f" rebuilt from the schema does not do: {'; '.join(steps)}. Deployed"
            " databases have had it done; a new database would not. Note what a"
            " new database needs (seed rows, say), run again with"
            " --drop-data-steps, and add it to the baseline's upgrade()."
        )
    if steps:
        report.append(
            "Not carried into the baseline (add what new databases need to its"
            f" upgrade()): {'; '.join(steps)}."
        )
    if skip_database_check:
        report.append(
            "The database was not checked: run `flask db current` against every"
            f" deployed database; each must be at {target} or after it."
        )
    else:
        try:
            report.append(check_database(db.engine, chosen))
        except DBAPIError as exc:
            raise connection_error(exc, db.engine) from None
    with (
        scratch_urls(scratch_url) as (history_url, baseline_url),
        tempfile.TemporaryDirectory(prefix="db-baseline-") as directory,
    ):
        schema = build(config, history_url, target)
        if history_url == baseline_url:
            empty(history_url)
        code = render(schema, db.metadata, baseline_url, chosen, steps)
        written = generate(config, Path(directory), target, code)
        differences = compare(config, baseline_url, schema)
        if differences:
            raise click.ClickException(
                f"Nothing written: the baseline would not build the schema at"
                f" {target}: {'; '.join(differences[:10])}. Please report this,"
                " with the revisions, to the template's maintainers."
            )
        versions = Path(script.versions)
        baseline = versions / written.name
        shutil.copy(written, baseline)
    archive = versions.parent / "squashed" / target
    archive.mkdir(parents=True, exist_ok=True)
    for old in chosen.squashed:
        shutil.move(old.path, archive / Path(old.path).name)
    report += [
        f"Wrote {baseline.relative_to(versions.parent.parent)}, the schema at"
        f" {target}, and moved the {len(chosen.squashed)} revisions it replaces"
        f" to {archive.relative_to(versions.parent.parent)}/.",
        "Next: read the baseline, run the tests (`pytest`), and commit both"
        " folders. The revisions after it are unchanged.",
    ]
    return report
