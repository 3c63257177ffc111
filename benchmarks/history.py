"""How the generated suite and `flask db upgrade` scale with the history.

    uv run python benchmarks/history.py                  # 1, 50, 101, 200; both engines
    uv run python benchmarks/history.py --revisions 1 101 --engines sqlite

A default project gets a generated history of N revisions (the template's
first, then, per table: create it with a foreign key, add a nullable column,
add a NOT NULL column with a server default, index a column, add a unique
constraint; every revision in the form `flask db migrate` writes) and the
models that match it. Measured, whole process, median of --runs:

- the generated suite (`pytest`): fresh, as in CI (test databases built from
  empty, every revision walked), and reused, as a developer's next run (the
  databases the previous run left; the walk skips what it proved);
- one test file (`pytest tests/test_models.py`), on the reused database;
- the suite's peak memory (maximum resident set size);
- `flask db upgrade` on an empty database.

PostgreSQL runs use a throw-away database (TEST_DATABASE_URL and DATABASE_URL).
The results replace the "History size" section of BENCHMARKS.md.
"""

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import sections  # noqa: E402
from benchmarks.run import Bench, machine  # noqa: E402
from tests.helpers import build_project_env, project_environ  # noqa: E402

FIRST_REVISION = "3f1a9c2b7d40"  # the template's "create users table"
STEPS_PER_TABLE = 5
SECTION = "## History size: the generated suite at 1 to 200 revisions"

HEADER = '''"""{message}

Revision ID: {revision}
Revises: {down}
Create Date: 2026-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "{revision}"
down_revision: str | None = "{down}"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


def batch(table: str, *lines: str) -> str:
    body = "".join(f"\n        {line}" for line in lines)
    return f'    with op.batch_alter_table("{table}") as batch_op:{body}'


def step(table: str, n: int, kind: int) -> tuple[str, str, str]:
    """(message, upgrade, downgrade) of the ``kind``-th change to ``table``."""
    if kind == 0:
        return (
            f"create {table}",
            f"""    op.create_table(
        "{table}",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_{table}_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_{table}")),
    )""",
            f'    op.drop_table("{table}")',
        )
    if kind == 1:
        return (
            f"add {table}.note",
            batch(
                table,
                'batch_op.add_column(sa.Column("note", sa.String(length=50),'
                " nullable=True))",
            ),
            batch(table, 'batch_op.drop_column("note")'),
        )
    if kind == 2:
        return (
            f"add {table}.active",
            batch(
                table,
                "batch_op.add_column(",
                '    sa.Column("active", sa.Boolean(), server_default=sa.false(),'
                " nullable=False)",
                ")",
            ),
            batch(table, 'batch_op.drop_column("active")'),
        )
    if kind == 3:
        return (
            f"index {table}.title",
            f'    op.create_index(op.f("ix_{table}_title"), "{table}", ["title"],'
            " unique=False)",
            f'    op.drop_index(op.f("ix_{table}_title"), table_name="{table}")',
        )
    return (
        f"unique {table}.note",
        batch(
            table,
            f'batch_op.create_unique_constraint(batch_op.f("uq_{table}_note"),'
            ' ["note"])',
        ),
        batch(
            table,
            f'batch_op.drop_constraint(batch_op.f("uq_{table}_note"), type_="unique")',
        ),
    )


def model(table: str, steps: int) -> str:
    name = "".join(part.title() for part in table.split("_"))
    index = ", index=True" if steps > 3 else ""
    lines = [
        f"class {name}(Model):",
        f'    __tablename__ = "{table}"',
        "",
        "    id: Mapped[int] = mapped_column(primary_key=True)",
        f"    title: Mapped[str] = mapped_column(String(100){index})",
        '    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))',
    ]
    if steps > 1:
        unique = ", unique=True" if steps > 4 else ""
        lines.append(
            f"    note: Mapped[str | None] = mapped_column(String(50){unique})"
        )
    if steps > 2:
        lines.append("    active: Mapped[bool] = mapped_column(server_default=false())")
    return "\n".join(lines)


def write_history(project: Path, revisions: int) -> None:
    """Give ``project`` a history of ``revisions`` revisions and its models."""
    versions = project / "migrations" / "versions"
    down = FIRST_REVISION
    tables: dict[str, int] = {}
    for n in range(revisions - 1):
        table = f"item_{n // STEPS_PER_TABLE}"
        kind = n % STEPS_PER_TABLE
        tables[table] = kind + 1
        revision = f"{n + 1:012x}"
        message, upgrade, downgrade = step(table, n, kind)
        slug = re.sub(r"\W", "_", message)
        (versions / f"2026_01_01_{n + 1:06d}-{revision}_{slug}.py").write_text(
            HEADER.format(
                message=message,
                revision=revision,
                down=down,
                upgrade=upgrade,
                downgrade=downgrade,
            )
        )
        down = revision
    if not tables:
        return
    models = project / "my_flask_app" / "models"
    (models / "history.py").write_text(
        '"""Generated by benchmarks/history.py."""\n\n'
        "from sqlalchemy import ForeignKey, String, false\n"
        "from sqlalchemy.orm import Mapped, mapped_column\n\n"
        "from ..extensions import Model\n\n\n"
        + "\n\n\n".join(model(table, steps) for table, steps in tables.items())
        + "\n"
    )
    init = models / "__init__.py"
    init.write_text(init.read_text() + "from . import history  # noqa: E402, F401\n")


def run(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall time and peak memory (KiB) of ``command``, whole process."""
    probe = (
        "import resource, subprocess, sys;"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", probe, *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        # Run again, visibly, to show why.
        again = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True
        )
        raise SystemExit(
            f"{' '.join(command)} failed in {cwd}:\n"
            f"{again.stdout[-4000:]}\n{again.stderr[-4000:]}"
        )
    return elapsed, int(result.stdout.strip())


def postgres_database(name: str) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def measure(project: Path, venv: Path, engine: str, runs: int) -> dict[str, float]:
    extra: dict[str, str] = {}
    if engine == "postgresql":
        test_url = postgres_database("bench_history_test")
        extra = {
            "TEST_DATABASE_URL": test_url,
            "DATABASE_URL": postgres_database("bench_history"),
        }
    # Not CI, whatever runs the benchmark: CI always proves every revision.
    env = project_environ(venv, CI="", **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's project keeps its bytecode
    pytest = ["python", "-m", "pytest", "-q", "-p", "no:randomly"]
    cache = project / ".pytest_cache"

    def fresh() -> tuple[float, int]:
        shutil.rmtree(cache, ignore_errors=True)
        return run(pytest, project, env)

    def reused() -> tuple[float, int]:
        return run(pytest, project, env)

    def one_file() -> tuple[float, int]:
        return run([*pytest, "tests/test_models.py"], project, env)

    def upgrade() -> tuple[float, int]:
        if engine == "sqlite":
            (project / "instance" / "my_flask_app.db").unlink(missing_ok=True)
        else:
            env["DATABASE_URL"] = postgres_database("bench_history")
        return run(["flask", "db", "upgrade"], project, env)

    run(pytest, project, env)  # warm-up: Python writes the bytecode, as for a user
    results: dict[str, float] = {}
    for name, once in (
        ("fresh", fresh),
        ("reused", reused),
        ("one_file", one_file),
        ("upgrade", upgrade),
    ):
        samples = [once() for _ in range(runs)]
        results[name] = statistics.median(s[0] for s in samples)
        results[f"{name}_rss"] = max(s[1] for s in samples) / 1024
    return results


def report(rows: dict[tuple[str, int], dict[str, float]], runs: int) -> str:
    lines = [
        SECTION,
        "",
        "`uv run python benchmarks/history.py`: a default project with a generated"
        " history (per table: create with a foreign key, add a nullable column, add"
        " a NOT NULL column with a server default, an index, a unique constraint),"
        f" whole process, median of {runs} run(s). Fresh, as in CI: test databases"
        " built from empty and every revision walked; reused, as a developer's next"
        " run: the databases the previous run left, and the walk skips the"
        " revisions it proved (the newest is always walked). Peak memory is the"
        " generated suite's, fresh.",
        "",
        f"Machine: {machine()}.",
        "",
        "| engine | revisions | suite, fresh (s) | suite, reused (s)"
        " | tests/test_models.py (s) | peak memory (MiB)"
        " | `flask db upgrade` from empty (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (engine, revisions), r in rows.items():
        lines.append(
            f"| {engine} | {revisions} | {r['fresh']:.1f} | {r['reused']:.1f} |"
            f" {r['one_file']:.1f} | {r['fresh_rss']:.0f} | {r['upgrade']:.1f} |"
        )
    lines += ["", "Against the targets (issue 15):", ""]
    for engine in sorted({engine for engine, _ in rows}):
        by_n = {n: r for (e, n), r in rows.items() if e == engine}
        if 1 in by_n and 101 in by_n:
            reused = by_n[101]["reused"] / by_n[1]["reused"]
            fresh = by_n[101]["fresh"] / by_n[1]["fresh"]
            lines.append(
                f"- {engine}: suite at 101 revisions / at 1: {reused:.2f}x reused"
                f" (target <= 3x); {fresh:.2f}x fresh, as in CI (linear: every"
                " revision walked)"
            )
        if 1 in by_n and 200 in by_n:
            ratio = by_n[200]["one_file"] / by_n[1]["one_file"]
            memory = by_n[200]["fresh_rss"] / by_n[1]["fresh_rss"]
            lines.append(
                f"- {engine}: one test file at 200 / at 1: {ratio:.2f}x"
                " (target <= 1.5x);"
                f" peak memory at 200 / at 1: {memory:.2f}x (target <= 1.5x)"
            )
    return "\n".join(lines) + "\n"


def kept_section(path: Path) -> str:
    """This script's section of the report at ``path``, for run.py to keep."""
    return sections.kept(path, SECTION)


def replace_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, nargs="+", default=[1, 50, 101, 200])
    parser.add_argument(
        "--engines",
        nargs="+",
        default=["sqlite", "postgresql"],
        choices=["sqlite", "postgresql"],
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--print-only", action="store_true", help="do not write BENCHMARKS.md"
    )
    parser.add_argument("--keep", action="store_true", help="keep the projects")
    args = parser.parse_args()
    rows: dict[tuple[str, int], dict[str, float]] = {}
    directory = Path(tempfile.mkdtemp(prefix="template-history-"))
    bench = Bench(directory, args.runs)
    sqlite_project = bench.copy(database="sqlite")
    postgres_project = bench.copy(database="postgresql")
    venv = build_project_env(
        [sqlite_project / "pyproject.toml", postgres_project / "pyproject.toml"],
        directory,
    )
    for revisions in args.revisions:
        # A SQLite project (its review has no PostgreSQL lock rules), tested on
        # PostgreSQL through TEST_DATABASE_URL as its CI would.
        project = bench.copy(database="sqlite")
        write_history(project, revisions)
        for engine in args.engines:
            print(f"{engine}, {revisions} revisions", flush=True)
            rows[(engine, revisions)] = measure(project, venv, engine, args.runs)
            print(rows[(engine, revisions)], flush=True)
    section = report(rows, args.runs)
    print(section)
    if not args.print_only:
        replace_section(args.output, section)
    if not args.keep:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
