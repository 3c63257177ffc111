"""Lint the SQL of the migrations a change adds, with squawk.

    python -m flask_safe_migrations.lint_sql [BASE]

BASE is the branch the change will merge into, such as origin/main. Each
revision file added since then (committed or not) is rendered to the SQL it
runs on PostgreSQL, `flask db upgrade --sql DOWN:REVISION` (offline: no
database is needed), and squawk lints it with the rules in .squawk.toml: a
lock that blocks reads or writes on a table that holds rows, a constraint
that scans it, a rewrite. Without BASE, or when git cannot find it, every
revision is linted. CI runs this on every change; run it before you push
(migrations/README, "Linting the SQL").

A finding the revision acknowledges for the review (its ACKNOWLEDGED list:
a column dropped once no running code reads it) is meant, for squawk too: the
squawk rules that flag the same operation (rules.py, each rule's `squawk`) are
off for that revision. Only what upgrade() runs is linted, so an acknowledged
downgrade finding ("downgrade: ...") turns nothing off. For a squawk rule the
review has no rule for, the revision says so in its file, for itself only:

    SQUAWK_IGNORE = ["ban-drop-column"]
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic.script import Script, ScriptDirectory

from . import review

# Any PostgreSQL URL: `upgrade --sql` only needs the dialect, and never connects.
OFFLINE_URL = "postgresql://lint@localhost/offline"


def git(*args: str) -> list[str] | None:
    """The words git prints, or None when git fails or is not installed."""
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True)
    except OSError:
        return None
    return result.stdout.split() if result.returncode == 0 else None


def added_revision_files(base: str | None) -> set[Path] | None:
    """The revision files added since ``base``; None when that is unknown."""
    if not base:
        return None
    merge_base = git("merge-base", base, "HEAD")
    versions = "migrations/versions"
    if merge_base is not None and len(merge_base) == 1:
        added = git("diff", "--name-only", "--diff-filter=A", *merge_base, versions)
        untracked = git("ls-files", "--others", "--exclude-standard", versions)
        if added is not None and untracked is not None:
            files = added + untracked
            return {Path(name).resolve() for name in files if name.endswith(".py")}
    print(
        f"Cannot tell which revisions were added since {base!r} (no git, or no"
        " such branch here): linting every revision.",
        file=sys.stderr,
    )
    return None


def revisions_to_lint(base: str | None) -> list[Script]:
    """Oldest first."""
    added = added_revision_files(base)
    scripts = reversed(list(ScriptDirectory("migrations").walk_revisions()))
    return [s for s in scripts if added is None or Path(s.path).resolve() in added]


def render(script: Script) -> str:
    """The SQL that ``script``'s upgrade runs on PostgreSQL."""
    down = script.down_revision
    if isinstance(down, tuple | list):  # a merge: nothing of its own to run
        return ""
    target = f"{down}:{script.revision}" if down else script.revision
    result = subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade", "--sql", target],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": OFFLINE_URL},
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"Cannot render {Path(script.path).name} as SQL (above).")
    ignored = sorted(
        {*getattr(script.module, "SQUAWK_IGNORE", []), *acknowledged_rules(script)}
    )
    header = f"-- squawk-ignore-file {', '.join(ignored)}\n" if ignored else ""
    return header + result.stdout


def acknowledged_rules(script: Script) -> set[str]:
    """The squawk rules of the review findings in ``script``'s upgrade (the SQL
    linted) that it acknowledges."""
    accepted = review.acknowledged(script.module)
    found = review.findings_in_revision(
        Path(script.path), vars(script.module), "postgresql"
    )
    return {
        rule
        for finding in found
        if finding.text in accepted and not finding.in_downgrade
        for rule in finding.rule.squawk
    }


def main(argv: list[str]) -> int:
    base = argv[0] if argv else None
    scripts = revisions_to_lint(base)
    if not scripts:
        print(f"No revision added since {base}: nothing to lint.")
        return 0
    squawk = shutil.which("squawk", path=str(Path(sys.executable).parent)) or "squawk"
    config = Path(".squawk.toml").resolve()
    with tempfile.TemporaryDirectory(prefix="lint-sql-") as directory:
        files = []
        for script in scripts:
            name = Path(script.path).with_suffix(".sql").name
            (Path(directory) / name).write_text(render(script))
            files.append(name)
        print(f"squawk: {len(files)} revision(s): {', '.join(files)}", flush=True)
        return subprocess.run(
            [squawk, "--config", str(config), *files], cwd=directory, check=False
        ).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
