"""Hostile and careless answers: every answer set the questions accept renders a
project that parses, builds its package metadata and passes its own lint; what
they refuse is refused with a message naming the question.

The property test renders in-process (copier's API, from a copy of the
template without its git history, so nothing is cloned) into temporary
directories; about 0.7 s a project. A few hand-picked hostile sets are also
built as wheels and run their own test suite in the shared environment.
"""

import json
import py_compile
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import tomllib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from copier import run_copy
from hatchling.metadata.core import ProjectMetadata
from hatchling.metadata.spec import get_core_metadata_constructors
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from packaging.metadata import Metadata
from uv import find_uv_bin

from .helpers import ROOT, run, run_tests


@pytest.fixture(scope="module")
def template_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as a plain folder: copier renders it without cloning."""
    target = tmp_path_factory.mktemp("template") / "template"
    shutil.copytree(
        ROOT,
        target,
        ignore=shutil.ignore_patterns(".git", ".venv", ".nox", "build", "__pycache__"),
    )
    return target


def render(template: Path, destination: Path, answers: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copier's DirtyLocalWarning and the like
        run_copy(str(template), destination, data=answers, defaults=True, quiet=True)


def check_project(project: Path, venv: Path) -> None:
    """The rendered project parses in every format, builds its package
    metadata and passes ruff (check and format)."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    for path in project.rglob("*.py"):
        py_compile.compile(str(path), cfile=str(path) + "c", doraise=True)
        Path(str(path) + "c").unlink()
    for path in [*project.rglob("*.yml"), *project.rglob("*.yaml")]:
        yaml.safe_load(path.read_text())
    for path in project.rglob("*.json"):
        json.loads(path.read_text())
    for path in project.rglob("*.toml"):
        tomllib.loads(path.read_text())
    # What the build backend writes into the wheel, parsed as an installer would.
    metadata = ProjectMetadata(str(project), None, config=pyproject)
    text = get_core_metadata_constructors()["2.4"](metadata)
    Metadata.from_email(text, validate=True)
    for command in (["check"], ["format", "--check"]):
        process = subprocess.run(
            [str(venv / "bin" / "ruff"), *command, "--no-cache", "--quiet", "."],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert process.returncode == 0, process.stdout + process.stderr


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A fresh folder per hypothesis example (function fixtures are not)."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        yield Path(folder)


# Any text, with the characters that broke projects before weighted in:
# quotes, backslashes, TOML and Python escapes, Jinja, Markdown, dashes and
# curly quotes, emoji, right-to-left text, control characters.
HOSTILE = st.sampled_from(
    [
        '"',
        "'",
        "\\",
        "\\n",
        "\\u0041",
        "{{ config.SECRET_KEY }}",
        "{% if %}",
        "#",
        "*",
        "<b>",
        "&amp;",
        "\u2013",
        "\u2019",
        "\U0001f600",
        "\u05e9\u05dc\u05d5\u05dd",
        "\u00a0",
        "\t",
        "\n",
        "\x7f",
        "\x00",
        " ",
        "é",
        "\u4e2d\u6587",
        "---",
        "1.",
        # Unicode non-characters (refused), and their neighbours (accepted).
        "\uffff",
        "\ufffe",
        "\ufdd0",
        "\U0010fffe",
        "\ufffd",
        "\ufdcf",
        "\ufeff",
    ]
)
TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(HOSTILE, st.text(max_size=12)), max_size=12).map("".join),
)
EMAIL = st.one_of(
    st.emails(),
    TEXT,
    st.sampled_from(
        ["a,b@x.com", "a@x..com", "é@x.com", '"a b"@x.com', "a@b", "a@x.com\n"]
    ),
)
# Every file that free text reaches is rendered: the Kubernetes manifests,
# Docker's files, each CI system's files.
ANSWERS = st.fixed_dictionaries(
    {
        "kubernetes": st.just(True),
        "docker": st.just(True),
        "ci": st.sampled_from(["github", "gitlab", "none"]),
    },
    optional={
        "project_name": TEXT,
        "description": TEXT,
        "author_name": TEXT,
        "author_email": EMAIL,
    },
)
# Sampled answer sets, refused or accepted; the suite prints the totals.
TRIED: dict[str, int] = {"accepted": 0, "refused": 0}


@settings(
    max_examples=35,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(answers=ANSWERS)
@example(
    answers={
        "project_name": 'Jane\'s "Shop" \u2013 C:\\data \U0001f600',
        "description": 'A "simple" order service \\n \\t \\u0041 {{ 1 }}',
        "author_name": 'Jane "JD" Doe, Jr.',
        "author_email": "jane.doe+shop@example.co.uk",
    }
)
@example(answers={"project_name": "Shop \uffff", "kubernetes": True, "ci": "github"})
@example(
    answers={
        "project_name": "Shop \ufffd\ufdcf\ufeff",
        "kubernetes": True,
        "docker": True,
        "ci": "gitlab",
    }
)
@example(answers={"project_name": "Customer Billing Service"})
@example(answers={"project_name": "A" * 29 + " B" * 30})
@example(answers={"description": ""})
@example(answers={"description": "  padded  "})
def test_every_accepted_answer_set_renders_a_valid_project(
    template_copy: Path, project_env: Path, scratch: Path, answers: dict[str, Any]
) -> None:
    destination = scratch / "project"
    shutil.rmtree(destination, ignore_errors=True)
    try:
        render(template_copy, destination, answers)
    except ValueError as error:
        TRIED["refused"] += 1
        question = str(error).split("'")[1]
        assert question in answers or question == "package_name", error
        assert str(error).count(question) >= 2, error  # the message names it
        assert not destination.exists()
        return
    TRIED["accepted"] += 1
    check_project(destination, project_env)


@pytest.fixture(scope="module", autouse=True)
def _report_answer_sets_tried() -> Iterator[None]:
    """Print how many answer sets were accepted and refused (seen with -s and
    without xdist, e.g. `-p no:xdist -s -k hostile`)."""
    yield
    print(f"\nhostile answer sets tried: {TRIED}")


# Hand-picked hostile answer sets that must also build a wheel and pass the
# project's own tests in the shared environment.
BUILT: dict[str, dict[str, Any]] = {
    "quotes-and-escapes": {
        "project_name": 'Jane\'s "Shop" \u2013 C:\\data',
        "description": 'A "simple" order service: \\n \\t \\u0041 \U0001f600',
        "author_name": 'Jane "JD" Doe, Jr.',
    },
    "jinja-and-markup": {
        "project_name": "{{ config.SECRET_KEY }}",
        "description": "<script>alert(1)</script> {% raw %} # *x*",
    },
    "non-ascii-name": {
        "project_name": "Caf\u00e9 \u0417\u0430\u043a\u0430\u0437\u044b"
    },
}


@pytest.mark.parametrize("name", BUILT)
def test_hostile_answers_build_and_pass_their_own_tests(
    fresh_project: Any, project_env: Path, tmp_path: Path, name: str
) -> None:
    project = fresh_project(**BUILT[name])
    run(
        project,
        project_env,
        *(str(find_uv_bin()), "build", "--wheel", "--quiet", "--out-dir"),
        str(tmp_path / "dist"),
    )
    assert list((tmp_path / "dist").glob("*.whl"))
    run_tests(project, project_env)
    package = yaml.safe_load((project / ".copier-answers.yml").read_text())[
        "package_name"
    ]
    page = run(
        project,
        project_env,
        "python",
        "-c",
        f"from {package} import create_app\n"
        "import sys\n"
        "client = create_app({'TESTING': True}).test_client()\n"
        "sys.stdout.write(client.get('/').get_data(as_text=True))",
    ).stdout
    assert "<h1>" in page
    if name == "jinja-and-markup":
        assert "&#123;&#123; config.SECRET_KEY }}" in page
        assert "&lt;script&gt;" in page


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


GOOD_SECRET_KEY = "6f1d0c9b3e8a47d2a5c1f07e9b2d4c68a3e5f7091b2c4d6e8f0a1b3c5d7e9f20"


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
@pytest.mark.parametrize(
    ("command", "message"),
    [
        (("db-wait", "--timeout", "2"), "still unreachable after 2s"),
        (("db", "upgrade"), "Cannot connect to database 'app' on 127.0.0.1:"),
    ],
)
def test_a_silent_database_server_is_given_up_on(
    render: Callable[[str], Path],
    project_env: Path,
    silent_server: int,
    scheme: str,
    command: tuple[str, ...],
    message: str,
) -> None:
    """Before issue 11, db-wait --timeout 3 took 134 s against PostgreSQL and
    hung against MySQL, and so did `flask db upgrade`. The subprocess timeout
    is generous: it catches a hang, not a slow machine."""
    process = run(
        render("mysql"),  # both drivers are in the shared environment
        project_env,
        "flask",
        *command,
        check=False,
        timeout=120,
        FLASK_APP="my_flask_app",
        SECRET_KEY=GOOD_SECRET_KEY,
        DATABASE_URL=f"{scheme}://app:hunter2@127.0.0.1:{silent_server}/app",
        DATABASE_CONNECT_TIMEOUT="2",
    )
    assert process.returncode == 1
    assert message in process.stderr
    assert "hunter2" not in process.stdout + process.stderr
    assert "Traceback" not in process.stderr


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_user_without_rights_to_migrate_gets_one_paragraph(
    render: Callable[[str], Path],
    project_env: Path,
    make_database: Callable[[str], str],
    engine: str,
) -> None:
    """Before issue 11, PostgreSQL printed a 117-line traceback."""
    url = sa.make_url(make_database(engine))
    if engine == "mysql":
        url = url.set(drivername="mysql+pymysql")
    user = f"tpl_{secrets.token_hex(4)}_reader"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    grant = (
        f"GRANT CONNECT ON DATABASE {url.database} TO {user}"
        if engine == "postgresql"
        else f"GRANT SELECT ON {url.database}.* TO '{user}'@'%%'"
    )
    create = (
        f"CREATE ROLE {user} LOGIN"
        if engine == "postgresql"
        else f"CREATE USER '{user}'@'%%'"
    )
    drop = f"DROP ROLE {user}" if engine == "postgresql" else f"DROP USER '{user}'@'%%'"
    with admin.connect() as connection:
        connection.exec_driver_sql(create)
        connection.exec_driver_sql(grant)
    try:
        process = run(
            render("mysql"),
            project_env,
            *("flask", "db", "upgrade"),
            check=False,
            FLASK_APP="my_flask_app",
            SECRET_KEY=GOOD_SECRET_KEY,
            DATABASE_URL=url.set(username=user, password=None).render_as_string(
                hide_password=False
            ),
        )
    finally:
        with admin.connect() as connection:
            if engine == "postgresql":
                connection.exec_driver_sql(
                    f"REVOKE ALL ON DATABASE {url.database} FROM {user}"
                )
            connection.exec_driver_sql(drop)
        admin.dispose()
    assert process.returncode == 1
    assert f"The database user '{user}' may not change the schema" in process.stderr
    assert "Traceback" not in process.stderr
