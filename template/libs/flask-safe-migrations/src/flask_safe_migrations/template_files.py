"""The template's files, where `copier update` expects them.

`copier update` writes the template's files into the package folder that
.copier-answers.yml names (package_name), and keeps a file the project deleted
deleted. So a package renamed without its answer is left at the old template
version while the tests move on, and a deleted migrations/env.py stays deleted
until every `flask db` command fails. The checks here name the file and the
fix: the migration tests run them all, and every `flask db` command checks the
migrations folder (app_setup.init_app).
"""

import json
from pathlib import Path

from alembic.config import Config
from alembic.util import CommandError

ANSWERS_FILE = ".copier-answers.yml"
# The template's files that the app and its `flask db` commands need, relative
# to the migrations folder and to the package.
MIGRATIONS_FILES = ("env.py", "alembic.ini", "script.py.mako")
PACKAGE_FILES = (
    "__init__.py",
    "cli.py",
    "config.py",
    "extensions.py",
    "security.py",
    "wsgi.py",
)


def answers(root: Path) -> dict[str, str]:
    """The answers in ``root``/.copier-answers.yml ({} without it): Copier
    writes one ``key: value`` a line, quoting a value only when YAML must."""
    try:
        lines = (root / ANSWERS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in lines:
        key, colon, value = line.partition(":")
        if not colon or line[:1] in " #-":
            continue
        value = value.strip()
        if len(value) > 1 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("''", "'")
        elif len(value) > 1 and value[0] == value[-1] == '"':
            value = json.loads(value)
        found[key.strip()] = value
    return found


def renamed_package(root: Path, package_dir: Path) -> str | None:
    """One paragraph if the answers name a package other than ``package_dir``
    (the one the app imports), else None."""
    named = answers(root).get("package_name")
    if not named or named == package_dir.name:
        return None
    updated = (root / named).is_dir()
    return (
        f"{ANSWERS_FILE} says package_name: {named}, but this project's package"
        f" is {package_dir.name}/, so `copier update` writes the template's files"
        f" into {named}/ and leaves {package_dir.name}/ at the old template"
        + (
            f" version (an update already wrote {named}/: undo it, with `git"
            " checkout -- . && git clean -fd` if not committed, or `git revert`)."
            if updated
            else " version."
        )
        + f" Set `package_name: {package_dir.name}` in {ANSWERS_FILE} and commit"
        ' it before updating (README.md, "Renaming the package").'
    )


def missing(root: Path, package_dir: Path, migrations_dir: Path) -> list[Path]:
    """The template's files (above) that are not in the project."""
    expected = [migrations_dir / name for name in MIGRATIONS_FILES]
    expected += [package_dir / name for name in PACKAGE_FILES]
    return [path for path in expected if not path.is_file()]


def explain_missing(root: Path, paths: list[Path]) -> str:
    """One paragraph: the missing files, why they stay missing, the fix."""
    shown = [
        path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        for path in paths
    ]
    commit = answers(root).get("_commit")
    ref = f" --vcs-ref={commit}" if commit else ""
    many = len(shown) > 1
    return (
        f"{', '.join(shown)} {'are' if many else 'is'} missing. The template owns"
        f" {'them' if many else 'it'}, the project needs"
        f" {'them' if many else 'it'} (every `flask db` command runs"
        " migrations/env.py), and `copier update` keeps a deleted file deleted."
        f" Restore {'them' if many else 'it'} as this template version renders"
        f" {'them' if many else 'it'}: in a clean git tree, run `uvx copier recopy"
        f" --force{ref}`, then `git add {' '.join(shown)}` and drop the rest"
        " with `git checkout -- . && git clean -fd`."
    )


def check_migrations_folder(config: Config) -> Config:
    """Before every `flask db` command (a Flask-Migrate configure callback,
    handed Alembic's config): a missing migrations/env.py, alembic.ini or
    script.py.mako is explained in one paragraph, not a traceback."""
    folder = Path(config.get_main_option("script_location") or "migrations")
    paths = [folder / name for name in MIGRATIONS_FILES]
    if gone := [path for path in paths if not path.is_file()]:
        raise CommandError(explain_missing(folder.parent, gone))
    return config
