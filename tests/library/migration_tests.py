"""Run a MiniProject's own migration tests: the ones a generated project's
tests/test_migrations.py imports from flask_safe_migrations.testing, through
the library's pytest plugin, in a pytest subprocess from the project's root
(the plugin's session-wide state wants a session of its own)."""

import os
import subprocess
import sys

from .conftest import APP_VARIABLES
from .miniproject import MiniProject

# The tests that prove the history; the generated file's other two prove the
# copier answers, which a rendered project has (tests/test_project.py).
MIGRATION_TESTS = (
    "test_every_model_module_is_imported",
    "test_every_review_finding_is_acknowledged",
    "test_every_revision_keeps_the_rows_and_downgrades_and_upgrades_again",
    "test_models_match_the_migrations",
    "test_there_is_one_head",
    "test_upgrade_builds_the_models_tables_on_an_empty_database",
)


def run_migration_tests(
    project: MiniProject, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Write tests/test_migrations.py (MIGRATION_TESTS) into ``project`` and
    run pytest on its tests/ folder with ``args``; ``env``: extra variables
    (TEST_DATABASE_URL...), in an environment without the app's settings (as
    the ``environment`` fixture's). AssertionError with the output if a test
    fails."""
    tests = project.root / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "test_migrations.py").write_text(
        "from flask_safe_migrations.testing import (  # noqa: F401\n"
        + "".join(f"    {name},\n" for name in MIGRATION_TESTS)
        + ")\n"
    )
    process = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"),
            # Only the library's plugin (its pytest11 entry point), not the
            # template's test tools (copie, xdist...): faster to start.
            *("-p", "flask_safe_migrations.pytest_plugin", "tests", *args),
        ],
        cwd=project.root,
        env={
            **{
                name: value
                for name, value in os.environ.items()
                if not name.startswith("FLASK_") and name not in APP_VARIABLES
            },
            "PYTHONPATH": str(project.root),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    return process
