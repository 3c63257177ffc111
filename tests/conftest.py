"""Fixtures for the template's own tests.

Projects are rendered with pytest-copie, once per answer set and session. They
run in one shared virtual environment, built once with uv from the rendered
projects' own pyproject.toml files, so the matrix installs nothing twice.
"""

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from pytest_copie.plugin import Copie

from .helpers import MATRIX, ROOT, build_project_env, copy
from .servers import SERVERS, Server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-databases",
        action="store_true",
        help="Fail, rather than skip, tests whose database server is unreachable"
        " (the default when CI=true).",
    )


def pytest_configure(config: pytest.Config) -> None:
    """The template under test is this repository, wherever pytest starts."""
    config.option.template = str(ROOT)


@pytest.fixture(scope="session", autouse=True)
def _isolate_copier_settings(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Keep the developer's own copier settings (defaults, trust) out of the tests."""
    settings = tmp_path_factory.mktemp("copier-settings") / "settings.yml"
    settings.write_text("{}\n")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("COPIER_SETTINGS_PATH", str(settings))
        yield


_server_errors: dict[str, str | None] = {}


def require_server(config: pytest.Config, engine: str) -> Server:
    """The server for ``engine``; if unreachable, skip the test (fail it in CI
    or under --require-databases) with a message that says how to start it."""
    server = SERVERS[engine]
    if engine not in _server_errors:
        _server_errors[engine] = server.connect_error()
    error = _server_errors[engine]
    if error:
        message = (
            f"{engine} server at {server.admin_url.host}:{server.admin_url.port}"
            f" is unreachable ({error}). Start it with `{server.start_command}`,"
            f" or point {server.variable} at one."
        )
        required = config.getoption("--require-databases")
        if required or os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return server


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Server:
    """Each database server in turn."""
    return require_server(request.config, request.param)


@pytest.fixture
def database(server: Server) -> Iterator[str]:
    """The URL of a new, empty database on ``server``, dropped after the test."""
    with server.database() as url:
        yield url


@pytest.fixture
def make_database(request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """Make a new, empty database on the server of an engine; dropped after."""
    with ExitStack() as stack:

        def _make(engine: str) -> str:
            return stack.enter_context(
                require_server(request.config, engine).database()
            )

        yield _make


@pytest.fixture(scope="session")
def render(copie_session: Copie) -> Callable[[str], Path]:
    """Render a MATRIX answer set (once per session) and return the project."""
    rendered: dict[str, Path] = {}

    def _render(name: str) -> Path:
        if name not in rendered:
            rendered[name] = copy(copie_session, MATRIX[name])
        return rendered[name]

    return _render


@pytest.fixture
def fresh_project(copie: Copie) -> Callable[..., Path]:
    """Render a project that the test may change, apart from the session's."""

    def _fresh(**answers: Any) -> Path:
        return copy(copie, answers)

    return _fresh


@pytest.fixture(scope="session")
def project_env(
    render: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A virtual environment with every rendered project's dependencies.

    Built from the rendered pyproject.toml files (so it cannot drift from what
    users install), once per dependency set, shared by the xdist workers.
    """
    pyprojects = [render(name) / "pyproject.toml" for name in ("defaults", "mysql")]
    return build_project_env(pyprojects, tmp_path_factory.getbasetemp().parent)


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def engine_url(
    request: pytest.FixtureRequest, make_database: Callable[[str], str]
) -> str | None:
    """None for the pytest plugin's own SQLite file, else a server database."""
    return None if request.param == "sqlite" else make_database(request.param)
