"""Find model modules that nothing imports.

A model reaches db.metadata, which `flask db migrate` and `flask db check`
compare with the database, only when its module is imported. A module added
under models/ and never imported in models/__init__.py is a table that
autogenerate does not see: `flask db migrate` says "No changes", and the
checks pass. This module finds such modules without importing them (importing
them here would hide the mistake from the app, which still would not see
them): a module under the models package that is not imported, whose source
defines a class, is reported with the import line that fixes it.
"""

import ast
import importlib
import pkgutil
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from alembic.util import CommandError


@dataclass(frozen=True)
class Unimported:
    """A module (or package) under models/ that nothing imports."""

    path: Path  # the module's file, or the package's folder
    parent: Path  # the __init__.py that should import it
    name: str  # its name in the parent package
    classes: tuple[str, ...]  # the classes its source defines

    def import_line(self) -> str:
        if self.path.is_dir() or not self.classes:
            return f"from . import {self.name}"
        return f"from .{self.name} import {', '.join(self.classes)}"


def unimported(
    package: ModuleType, imported: Collection[str] | None = None
) -> list[Unimported]:
    """The modules under ``package`` (the models package) that are not among
    ``imported`` (default: the modules this process has imported) and define a
    class. A package nobody imports is reported, not the modules inside it."""
    folders = [Path(path) for path in getattr(package, "__path__", [])]  # a module: []
    names = set(sys.modules if imported is None else imported)
    return _walk(package.__name__, folders, names)


def _walk(prefix: str, folders: list[Path], imported: set[str]) -> list[Unimported]:
    found: list[Unimported] = []
    for folder in folders:
        for info in sorted(pkgutil.iter_modules([str(folder)]), key=_by_name):
            name = f"{prefix}.{info.name}"
            path = folder / (info.name if info.ispkg else f"{info.name}.py")
            if name in imported:
                if info.ispkg:
                    found += _walk(name, [path], imported)
                continue
            classes = _classes(path)
            if classes is None or classes:
                found.append(
                    Unimported(path, folder / "__init__.py", info.name, classes or ())
                )
    return found


def _by_name(info: pkgutil.ModuleInfo) -> str:
    return info.name


# What reading and parsing a file raises (ValueError: a null byte).
UNREADABLE = (OSError, SyntaxError, ValueError)


def _classes(path: Path) -> tuple[str, ...] | None:
    """The top-level classes that ``path`` (a module, or every module of a
    package folder) defines; None if a file does not parse (importing it would
    fail: worth reporting too)."""
    classes: list[str] = []
    for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
        try:
            tree = ast.parse(file.read_bytes(), filename=str(file))
        except UNREADABLE:
            return None
        classes += [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    return tuple(classes)


def explain(found: list[Unimported], root: Path) -> str:
    """One paragraph naming each module and the line that imports it; paths
    are shown relative to ``root`` (the project's folder)."""

    def shown(path: Path) -> str:
        return (
            path.relative_to(root).as_posix()
            if path.is_relative_to(root)
            else str(path)
        ) + ("/" if path.is_dir() else "")

    modules = [
        shown(item.path) + (f" ({', '.join(item.classes)})" if item.classes else "")
        for item in found
    ]
    fixes = [
        f"`{item.import_line()}` to {shown(item.parent)}"
        + (
            " (and " + ", ".join(f'"{name}"' for name in item.classes) + " to __all__)"
            if item.classes and not item.path.is_dir()
            else ""
        )
        for item in found
    ]
    one = len(found) == 1
    return (
        f"{', '.join(modules)} {'is' if one else 'are'} not imported, so"
        f" {'its' if one else 'their'} models are not on db.metadata and `flask"
        " db migrate` cannot see their tables. Add"
        f" {'; '.join(fixes)}, then run `flask db migrate` again."
    )


def refuse_unimported(package_name: str) -> None:
    """Stop the command (`flask db migrate`, `check`, `revision`) with one
    paragraph if a module under the package ``package_name`` (the models, which
    the app has imported) is not imported."""
    package = importlib.import_module(package_name)
    found = unimported(package)
    if found:
        # The project's folder: <root>/<package>/models/__init__.py
        root = Path(package.__file__ or ".").parent.parent.parent
        raise CommandError(explain(found, root))
