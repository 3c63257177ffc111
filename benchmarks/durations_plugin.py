"""A pytest plugin for the benchmarks: writes every test's setup, call and
teardown durations to the JSON file named by BENCHMARK_DURATIONS."""

import json
import os
from pathlib import Path

import pytest

_durations: dict[str, list[float]] = {"setup": [], "call": [], "teardown": []}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.when].append(report.duration)


def pytest_sessionfinish(session: pytest.Session) -> None:
    Path(os.environ["BENCHMARK_DURATIONS"]).write_text(json.dumps(_durations))
