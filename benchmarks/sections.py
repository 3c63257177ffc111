"""BENCHMARKS.md is one file written by several scripts: each owns a section,
from its heading to the next "## " heading, and keeps the others'."""

from pathlib import Path


def replace(document: str, heading: str, section: str) -> str:
    """``document`` with the section under ``heading`` replaced by ``section``
    (or added at the end)."""
    if heading in document:
        before, _, after = document.partition(heading)
        rest = after.split("\n## ", 1)
        tail = "\n## " + rest[1] if len(rest) == 2 else ""
        return before + section + tail
    return document.rstrip("\n") + "\n\n" + section


def kept(path: Path, heading: str) -> str:
    """The section under ``heading`` of the report at ``path`` ("" if none),
    for run.py to keep when it rewrites the report."""
    if not path.exists() or heading not in path.read_text():
        return ""
    after = path.read_text().partition(heading)[2]
    return heading + after.split("\n## ", 1)[0].rstrip("\n") + "\n"
