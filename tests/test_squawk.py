"""squawk is a PostgreSQL project's tool: .squawk.toml, squawk-cli in its dev
dependencies, and migrations/README's "Linting the SQL" are rendered for
PostgreSQL projects only.

What lint_sql does with them (the SQL of the revisions a change adds, the
acknowledgements) is tested in-process in tests/library/test_lint_sql.py; the
generated CI's own lint step runs in tests/test_pipelines.py."""

from collections.abc import Callable
from pathlib import Path


def test_squawk_is_a_postgresql_project_tool(
    render: Callable[[str], Path],
) -> None:
    for name, present in (("defaults", True), ("mysql", False), ("sqlite", False)):
        project = render(name)
        assert (project / ".squawk.toml").exists() is present
        assert ("squawk-cli" in (project / "pyproject.toml").read_text()) is present
        readme = (project / "migrations" / "README").read_text()
        assert ("lint_sql" in readme) is present
