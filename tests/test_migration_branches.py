"""The rendered CI runs the single-head test before anything needs a
database. (Two heads reported first, and passing once merged: the library's
own test, tests/library/test_migration_branches.py.)"""

from collections.abc import Callable
from pathlib import Path

import pytest

from .library.generated_suite import HEAD_TEST
from .test_pipelines import pipeline_jobs


@pytest.mark.parametrize(
    ("ci", "answers"), [("github", "defaults"), ("gitlab", "gitlab")]
)
def test_ci_checks_for_one_head_before_anything_needs_a_database(
    render: Callable[[str], Path], ci: str, answers: str
) -> None:
    (lint,) = [j for j in pipeline_jobs(render(answers), ci) if j.name == "lint"]
    assert f"uv run pytest -q {HEAD_TEST}" in lint.commands
