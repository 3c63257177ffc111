"""What the xdist workers of one test session share: a folder, and work done
once in it for all of them."""

import os
from pathlib import Path

import pytest


def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of this session's that every xdist worker sees (each worker's
    basetemp is a folder of it; without xdist, it is the basetemp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
