"""`copier update` brings template changes into a project without clobbering
the user's work. Real git repositories, real tagged template versions, real
updates through Copier's CLI and its Python API."""

import py_compile
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from copier import run_copy, run_update

from .helpers import LIBRARY, ROOT, add_model, run, run_tests

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}

# Files the user owns (see copier.yml), relative to a default project.
USER_OWNED = (
    "README.md",
    "my_flask_app/models/__init__.py",
    "my_flask_app/models/user.py",
    "my_flask_app/models/order.py",
    "my_flask_app/main.py",
    "my_flask_app/migration_settings.py",
    "my_flask_app/templates/base.html",
    "my_flask_app/templates/index.html",
    "tests/test_app.py",
    "tests/test_models.py",
)

# The last landed main before the migration machinery became the
# flask-safe-migrations library (libs/): projects generated from it have the
# machinery in their package (migration_tools/, commands.py, ...).
BEFORE_THE_LIBRARY = "5944b91"

ORDER_MODEL = '''\
"""An order, placed by a user."""

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Base


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reference: Mapped[str] = mapped_column(String(40), unique=True)
'''
# The same, as the template has taught since models could use binds.
ORDER_MODEL_ON_MODEL = ORDER_MODEL.replace("Base", "Model")

# The user's own files: a blueprint, an extension, and tests of both (through
# a fixture of their own in tests/conftest.py) and of a setting of their own
# in config.py. Copier never touches files it did not write; the tests
# passing after an update prove the edits to the template's files that wire
# them up survived.
USER_FILES = {
    "my_flask_app/api.py": '''\
"""The JSON API."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/ping")
def ping() -> dict[str, bool]:
    return {"pong": True}
''',
    "my_flask_app/request_id.py": '''\
"""An X-Request-ID header on every response, for tracing across services."""

import uuid

from flask import Flask, Response, request


class RequestId:
    def init_app(self, app: Flask) -> None:
        app.after_request(self._add_header)

    @staticmethod
    def _add_header(response: Response) -> Response:
        given = request.headers.get("X-Request-ID")
        response.headers["X-Request-ID"] = given or uuid.uuid4().hex
        return response
''',
    "tests/test_api.py": '''\
"""The JSON API, and the settings and extensions it relies on."""

from flask import Flask
from flask.testing import FlaskClient


def test_ping_answers_with_a_request_id(api_client: FlaskClient) -> None:
    response = api_client.get("/api/ping")
    assert response.json == {"pong": True}
    assert response.headers["X-Request-ID"]


def test_uploads_are_limited(app: Flask) -> None:
    assert app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024
''',
}
USER_TESTS = (
    "tests/test_api.py::test_ping_answers_with_a_request_id",
    "tests/test_api.py::test_uploads_are_limited",
)
MAX_CONTENT_LENGTH = '    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024\n'
API_CLIENT_FIXTURE = '''

@pytest.fixture
def api_client(client: FlaskClient) -> FlaskClient:
    """A client that asks for JSON."""
    client.environ_base["HTTP_ACCEPT"] = "application/json"
    return client
'''
# The user's dependency, appended to [project] dependencies.
DEPENDENCY = '    "blinker>=1.9",\n'


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**GIT_IDENTITY, "PATH": "/usr/bin:/bin", "HOME": str(repo)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def snapshot(project: Path) -> dict[str, bytes]:
    """Every file of the project (outside .git and caches) and its bytes."""
    return {
        path.relative_to(project).as_posix(): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file()
        and not {".git", "instance", "__pycache__", ".venv"} & set(path.parts)
    }


def conflicted(project: Path) -> set[str]:
    return {
        name
        for name, content in snapshot(project).items()
        if re.search(rb"^<<<<<<< ", content, re.MULTILINE) or name.endswith(".rej")
    }


CONFLICT = re.compile(
    r"^<<<<<<< before updating\n(.*?)^=======\n(.*?)^>>>>>>> after updating\n",
    re.DOTALL | re.MULTILINE,
)


def conflicts(path: Path) -> list[tuple[str, str]]:
    """The (before updating, after updating) sides of each conflict in ``path``."""
    return CONFLICT.findall(path.read_text())


def take_the_update(path: Path) -> None:
    """Resolve every conflict in ``path`` with its "after updating" side."""
    path.write_text(CONFLICT.sub(lambda match: match[2], path.read_text()))


def write_user_files(project: Path) -> None:
    for name, source in USER_FILES.items():
        (project / name).write_text(source)


def wire_up_user_files(project: Path) -> None:
    """The user's edits to the template's files (this shape of them) that
    register the blueprint, bind the extension, add the setting and the
    fixture."""
    package = project / "my_flask_app"
    init = package / "__init__.py"
    edit(init, "from . import config,", "from . import api, config,")
    edit(
        init,
        "    app.register_blueprint(main.bp)\n",
        "    app.register_blueprint(main.bp)\n    app.register_blueprint(api.bp)\n",
    )
    extensions = package / "extensions.py"
    edit(
        extensions,
        "from sqlalchemy.orm import DeclarativeBase\n",
        "from sqlalchemy.orm import DeclarativeBase\n"
        "\nfrom .request_id import RequestId\n",
    )
    if "request_id = RequestId()" not in extensions.read_text():  # merged
        edit(
            extensions,
            "render_as_batch=True)\n",
            "render_as_batch=True)\nrequest_id = RequestId()\n",
        )
    edit(
        extensions,
        "    flask_safe_migrations.init_app(app, db, migrate)\n",
        "    flask_safe_migrations.init_app(app, db, migrate)\n"
        "    request_id.init_app(app)\n",
    )
    # At the end of configure(), under the comment that says where.
    with (package / "config.py").open("a") as config:
        config.write(MAX_CONTENT_LENGTH)
    with (project / "tests" / "conftest.py").open("a") as conftest:
        conftest.write(
            "\nimport pytest\nfrom flask.testing import FlaskClient\n"
            + API_CLIENT_FIXTURE
        )


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A git repository of this template as it is now, tagged v1.0.0."""
    return template_repo(tmp_path / "template")


def working_tree_files() -> list[str]:
    """This repository's files as they are now, committed or not (not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return [name for name in listed if name and (ROOT / name).is_file()]


def copy_working_tree(repo: Path) -> None:
    for name in working_tree_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)


def template_repo(repo: Path) -> Path:
    """Make ``repo`` a git repository of this template as it is now, tagged
    v1.0.0."""
    copy_working_tree(repo)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "Template 1.0.0")
    git(repo, "tag", "v1.0.0")
    return repo


def template_with_history(repo: Path) -> Path:
    """A clone of this repository, its history included, whose newest commit
    is the template as it is now (uncommitted changes too), and with none of
    this repository's tags: the test tags the versions it updates between.
    Skips on a shallow clone, which lacks the history."""
    if git(ROOT, "rev-parse", "--is-shallow-repository").strip() == "true":
        pytest.skip("needs the full history of main; this clone is shallow")
    git(repo.parent, "clone", "-q", str(ROOT), str(repo))
    git(repo, "rm", "-rq", "--", ".")
    copy_working_tree(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "The working tree")
    for tag in git(repo, "tag", "--list").split():  # releases of this repo
        git(repo, "tag", "-d", tag)
    return repo


def release_1_1(template: Path) -> None:
    """A realistic template release: env.py, the library, the CI file,
    config.py and extensions.py change, a file is added and one removed, and
    the user-owned examples change too (which must not reach existing
    projects)."""
    t = template / "template"
    edit(
        t / "migrations/env.py",
        "alembic_env.run(context)\n",
        "alembic_env.run(context)  # libs/flask-safe-migrations/README.md\n",
    )
    edit(
        t / "libs/flask-safe-migrations/src/flask_safe_migrations/locking.py",
        "LOCK_TIMEOUT_SECONDS = 600",
        "LOCK_TIMEOUT_SECONDS = 900",
    )
    edit(
        t / "{% if ci == 'github' %}.github{% endif %}/workflows/ci.yml.jinja",
        "      - name: Migration tests\n",
        "      - name: Show the migration history\n"
        "        run: uv run flask db history\n"
        "      - name: Migration tests\n",
    )
    # The line next to the one the user edits in config.py.
    edit(
        t / "{{package_name}}/config.py.jinja",
        "# Outside debug and testing, DATABASE_URL must be set; the error shows this.",
        "# Outside debug and testing, DATABASE_URL must be set; its error shows this.",
    )
    # Far from the user's edits in extensions.py: both merge.
    edit(
        t / "{{package_name}}/extensions.py",
        'CheckConstraint(..., name="positive_price").',
        'CheckConstraint(..., name="price_positive").',
    )
    (t / ".editorconfig").write_text("root = true\n\n[*]\nend_of_line = lf\n")
    (t / "migrations/versions/.gitkeep").unlink()
    edit(t / "README.md.jinja", "## Setup", "## Getting started")
    edit(
        t / "{{package_name}}/models/{% if example_model %}user.py{% endif %}.jinja",
        "String(255)",
        "String(320)",
    )
    commit_all(template, "Template 1.1.0")
    git(template, "tag", "v1.1.0")


def copy_project(template: Path, destination: Path, **answers: object) -> Path:
    run_copy(
        str(template),
        destination,
        data=answers,
        defaults=True,
        vcs_ref="v1.0.0",
        quiet=True,
    )
    git(destination, "init", "-q", "-b", "main")
    commit_all(destination, "Generated from the template")
    return destination


OUR_PRODUCTION_URL = '"postgresql://shop:password@db.internal:5432/shop"'


def do_user_work(project: Path, venv: Path) -> None:
    """What a user does in the weeks after generating the project."""

    def flask(*args: str) -> None:
        run(project, venv, "flask", *args)

    package = project / "my_flask_app"
    flask("db", "upgrade")
    # A model of their own, with its revision.
    add_model(project, "order", "Order", ORDER_MODEL_ON_MODEL)
    # An edit to the example model, in the same revision.
    edit(
        package / "models" / "user.py",
        "    name: Mapped[str] = mapped_column(String(100))\n",
        "    name: Mapped[str] = mapped_column(String(100))\n"
        "    is_admin: Mapped[bool] = mapped_column(server_default=false())\n",
    )
    edit(package / "models" / "user.py", " String, func\n", " String, false, func\n")
    flask("db", "migrate", "-m", "add orders and admins")
    flask("db", "upgrade")
    # Their README, a blueprint, an extension, a setting, a fixture, a
    # dependency, their production URL in config.py's error message, and a
    # template file they do not want.
    with (project / "README.md").open("a") as readme:
        readme.write("\n## Operations\n\nPage the on-call engineer before migrating.\n")
    write_user_files(project)
    wire_up_user_files(project)
    edit(
        project / "pyproject.toml",
        '    "psycopg[binary]>=3.2",\n',
        '    "psycopg[binary]>=3.2",\n' + DEPENDENCY,
    )
    edit(
        package / "config.py",
        '"postgresql://user:password@host:5432/dbname"',
        OUR_PRODUCTION_URL,
    )
    (project / "LICENSE").unlink()  # the case that triggers Copier's pattern bug
    commit_all(project, "Our work")


def update_with_cli(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def update_with_api(project: Path) -> None:
    run_update(str(project), defaults=True, overwrite=True, quiet=True)


def passes_its_suite(project: Path, venv: Path) -> None:
    """The project's own tests pass, the user's among them."""
    result = run_tests(project, venv, "-rA")
    for test in USER_TESTS:
        assert f"PASSED {test}" in result.stdout, result.stdout


@pytest.mark.parametrize("how", ["cli", "api"])
def test_update_brings_template_changes_and_keeps_the_users_work(
    template: Path, tmp_path: Path, project_env: Path, how: str
) -> None:
    project = copy_project(template, tmp_path / "project")
    do_user_work(project, project_env)
    before = snapshot(project)
    revisions_before = sorted(
        n for n in before if n.startswith("migrations/versions/2")
    )
    assert len(revisions_before) == 2  # the initial one and the user's
    release_1_1(template)

    if how == "cli":
        result = update_with_cli(project)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Updating to template version 1.1.0" in result.stderr
        assert "Warning:" not in result.stderr  # copier.yml's _message_after_update
        assert "commit uv.lock with the update" in result.stderr
    else:
        update_with_api(project)

    after = snapshot(project)
    # The template's changes arrived in the files it owns, the library's in
    # libs/.
    assert (
        "alembic_env.run(context)  # libs/flask-safe-migrations/README.md\n"
        in after["migrations/env.py"].decode()
    )
    locking = after["libs/flask-safe-migrations/src/flask_safe_migrations/locking.py"]
    assert b"LOCK_TIMEOUT_SECONDS = 900" in locking
    assert b"uv run flask db history" in after[".github/workflows/ci.yml"]
    assert ".editorconfig" in after
    assert "migrations/versions/.gitkeep" not in after
    assert b"_commit: v1.1.0" in after[".copier-answers.yml"]
    # Every file the user owns or added is byte for byte what the user left.
    for name in (*USER_OWNED, *USER_FILES, *revisions_before):
        assert after[name] == before[name], name
    assert (
        sorted(n for n in after if n.startswith("migrations/versions/"))
        == revisions_before
    )
    assert "LICENSE" not in after, "a file the user deleted came back"
    # The user's edits to template-owned files are merged with the template's.
    extensions = after["my_flask_app/extensions.py"].decode()
    assert 'CheckConstraint(..., name="price_positive").' in extensions
    for line in (
        "from .request_id import RequestId\n",
        "request_id = RequestId()\n",
        "    request_id.init_app(app)\n",
    ):
        assert line in extensions
    assert after["my_flask_app/__init__.py"] == before["my_flask_app/__init__.py"]
    assert after["tests/conftest.py"] == before["tests/conftest.py"]
    pyproject = after["pyproject.toml"].decode()
    assert DEPENDENCY in pyproject
    # The only conflict is where user and template changed adjacent lines of a
    # template-owned file; Copier marks it inline.
    assert conflicted(project) == {"my_flask_app/config.py"}
    config = project / "my_flask_app/config.py"
    [(ours, theirs)] = conflicts(config)
    assert OUR_PRODUCTION_URL in ours
    assert "must be set; its error shows this." in theirs
    assert MAX_CONTENT_LENGTH in config.read_text()  # merged

    # The user resolves it, keeping both changes; then everything works.
    take_the_update(config)
    edit(config, '"postgresql://user:password@host:5432/dbname"', OUR_PRODUCTION_URL)
    assert conflicted(project) == set()
    passes_its_suite(project, project_env)
    run(project, project_env, "flask", "db", "upgrade")
    run(project, project_env, "flask", "db", "check")


def test_changing_answers_through_update_gives_a_working_project(
    template: Path,
    tmp_path: Path,
    project_env: Path,
    make_database: Callable[[str], str],
) -> None:
    """A project started on SQLite with GitHub Actions moves to PostgreSQL and
    GitLab CI with `copier update --data ...`, and works there."""
    project = copy_project(template, tmp_path / "project", database="sqlite")
    run(project, project_env, "flask", "db", "upgrade")

    result = subprocess.run(
        [
            *(sys.executable, "-m", "copier", "update", "--defaults"),
            *("--data", "database=postgresql", "--data", "ci=gitlab"),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert conflicted(project) == set()
    files = snapshot(project)
    assert b'"psycopg[binary]' in files["pyproject.toml"]
    assert b'production-engine = "postgresql"' in files["pyproject.toml"]
    assert ".github/workflows/ci.yml" not in files
    assert b"postgres:17" in files[".gitlab-ci.yml"]
    assert b"POSTGRES_PASSWORD" in files["compose.yaml"]
    assert (
        b'PRODUCTION_URL_EXAMPLE: str | None = "postgresql://'
        in (files["my_flask_app/config.py"])
    )
    database = make_database("postgresql")
    run(project, project_env, "flask", "db", "upgrade", DATABASE_URL=database)
    run(project, project_env, "flask", "db", "check", DATABASE_URL=database)
    result = run_tests(
        project, project_env, TEST_DATABASE_URL=make_database("postgresql")
    )
    assert " passed" in result.stdout


def copy_as_a_user_would(template: Path, destination: Path, ref: str) -> None:
    """Render with Copier's default warning handling: an early commit's
    validators emit warnings that pytest's settings would turn into errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_copy(str(template), destination, defaults=True, vcs_ref=ref, quiet=True)


# What the library replaced in a project generated before it (template-owned,
# deleted by the update).
OLD_MACHINERY = (
    "my_flask_app/migration_tools/",
    "my_flask_app/commands.py",
    "my_flask_app/connect_timeout.py",
    "tests/test_commands.py",
)


def do_user_work_on_the_old_shape(project: Path, venv: Path) -> None:
    """The user's work on a project generated before the library: the same
    blueprint, extension, setting, fixture and dependency as do_user_work,
    wired up where that template's files had room for them, and a tweak to
    the template's machinery."""
    package = project / "my_flask_app"
    run(project, venv, "flask", "db", "upgrade")
    add_model(project, "order", "Order", ORDER_MODEL_ON_MODEL)
    run(project, venv, "flask", "db", "migrate", "-m", "add orders")
    run(project, venv, "flask", "db", "upgrade")
    with (project / "README.md").open("a") as readme:
        readme.write("\n## Operations\n\nPage the on-call engineer before migrating.\n")
    write_user_files(project)
    init = package / "__init__.py"
    edit(
        init,
        "from . import (  # noqa: F401  (models: see below)\n",
        "from . import (  # noqa: F401  (models: see below)\n    api,\n",
    )
    edit(
        init,
        "    app.register_blueprint(main.bp)\n",
        "    app.register_blueprint(main.bp)\n    app.register_blueprint(api.bp)\n",
    )
    extensions = package / "extensions.py"
    edit(
        extensions,
        "from .config import ConfigError\n",
        "from .config import ConfigError\nfrom .request_id import RequestId\n",
    )
    edit(
        extensions,
        "render_as_batch=True)\n",
        "render_as_batch=True)\nrequest_id = RequestId()\n",
    )
    edit(
        extensions,
        "    migrate.init_app(app, db)\n",
        "    migrate.init_app(app, db)\n    request_id.init_app(app)\n",
    )
    edit(
        package / "config.py",
        '    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"\n',
        '    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"\n' + MAX_CONTENT_LENGTH,
    )
    with (project / "tests" / "conftest.py").open("a") as conftest:
        conftest.write(API_CLIENT_FIXTURE)  # pytest and FlaskClient are imported
    edit(
        project / "pyproject.toml",
        '    "psycopg[binary]>=3.2",\n',
        '    "psycopg[binary]>=3.2",\n' + DEPENDENCY,
    )
    edit(
        package / "migration_tools" / "locking.py",
        "LOCK_TIMEOUT_SECONDS = 600",
        "LOCK_TIMEOUT_SECONDS = 900",
    )
    commit_all(project, "Our work")


def test_update_from_before_the_library_keeps_the_users_work(
    tmp_path: Path, project_env: Path
) -> None:
    """A project generated before the migration machinery became a library,
    with the user's day-two work, updates to the template as it is now: the
    user's files stay, the old machinery goes, the library arrives in libs/,
    and where the user edited the bodies that moved to the library, Copier
    shows the user's lines in conflicts that a user resolves by putting them
    back in the new, short files."""
    template = template_with_history(tmp_path / "template")
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{BEFORE_THE_LIBRARY}^{{commit}}"], cwd=template
    )
    assert found.returncode == 0, f"{BEFORE_THE_LIBRARY} is not in this history"
    git(template, "tag", "v0.9.0", BEFORE_THE_LIBRARY)
    git(template, "tag", "v1.0.0", "HEAD")
    project = tmp_path / "project"
    copy_as_a_user_would(template, project, "v0.9.0")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Generated")
    do_user_work_on_the_old_shape(project, project_env)
    # The user's work passes the old suite (the environment also holds the
    # library, whose pytest plugin the old conftest.py duplicates).
    result = run_tests(project, project_env, "-rA", "-p", "no:flask_safe_migrations")
    assert all(f"PASSED {test}" in result.stdout for test in USER_TESTS)
    before = snapshot(project)
    user_lines = {
        name: [
            line[1:]
            for line in git(
                project, "diff", "-U0", "HEAD~1", "HEAD", "--", name
            ).splitlines()
            if line.startswith("+") and not line.startswith("+++")
        ]
        for name in (
            "my_flask_app/__init__.py",
            "my_flask_app/config.py",
            "my_flask_app/extensions.py",
            "pyproject.toml",
            "tests/conftest.py",
        )
    }
    # What running the app leaves in the machinery's folder (git ignores it;
    # the tests here run without writing bytecode).
    old_tools = project / "my_flask_app" / "migration_tools"
    py_compile.compile(str(old_tools / "locking.py"))

    result = update_with_cli(project)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Updating to template version 1.0.0" in result.stderr
    assert "Warning:" not in result.stderr
    after = snapshot(project)
    assert b"_commit: v1.0.0" in after[".copier-answers.yml"]
    # The user's own files, byte for byte, and no revision added.
    revisions = sorted(n for n in before if n.startswith("migrations/versions/2"))
    assert len(revisions) == 2
    for name in (*USER_OWNED, *USER_FILES, *revisions):
        assert after[name] == before[name], name
    assert sorted(n for n in after if n.startswith("migrations/versions/2")) == (
        revisions
    )
    # No orphaned machinery: every file of it is deleted, the one the user
    # tweaked too (Copier deletes a file the template stops shipping, edited
    # or not). Copier leaves the git-ignored __pycache__/, so the folder
    # stays, holding nothing Python imports.
    assert [n for n in after if n.startswith(OLD_MACHINERY)] == []
    assert list(old_tools.rglob("*.py")) == []
    assert "LOCK_TIMEOUT_SECONDS = 900" not in "".join(
        content.decode() for name, content in after.items() if name.endswith(".py")
    )
    # The library arrived whole (an _exclude pattern for the user's README.md
    # once also matched the library's, which its build needs).
    library = {
        name.removeprefix("libs/flask-safe-migrations/"): content
        for name, content in after.items()
        if name.startswith("libs/")
    }
    in_library = (ROOT / name for name in working_tree_files())
    expected = {
        path.relative_to(LIBRARY).as_posix(): path.read_bytes()
        for path in in_library
        if path.is_relative_to(LIBRARY)
    }
    assert "README.md" in expected
    assert library == expected
    # pyproject.toml merged: the library as a path dependency, and the
    # user's dependency.
    pyproject = after["pyproject.toml"].decode()
    assert DEPENDENCY in pyproject
    assert (
        'flask-safe-migrations = { path = "libs/flask-safe-migrations"'
    ) in pyproject
    # The user's lines in the four files whose bodies moved to the library
    # are all still there, but next to the old machinery they were written
    # into: Copier's 3-way merge marks those places as conflicts (and git
    # records the files as unmerged). Nothing in the new files can avoid it:
    # each edit touches lines that the library replaced.
    merged_by_hand = {
        "my_flask_app/__init__.py",
        "my_flask_app/config.py",
        "my_flask_app/extensions.py",
        "tests/conftest.py",
    }
    assert conflicted(project) == merged_by_hand
    unmerged = git(project, "diff", "--name-only", "--diff-filter=U").split()
    assert set(unmerged) == merged_by_hand
    for name, lines in user_lines.items():
        assert lines, name
        for line in lines:
            assert line in after[name].decode().splitlines(), (name, line)

    # The user resolves them: takes the update, and wires up their blueprint,
    # extension, setting and fixture in the new files, as in a new project
    # (the extension's instance merged cleanly, outside the conflicts).
    for name in merged_by_hand:
        take_the_update(project / name)
    assert (
        "request_id = RequestId()\n"
        in (project / "my_flask_app" / "extensions.py").read_text()
    )
    wire_up_user_files(project)
    assert conflicted(project) == set()
    run(project, project_env, "flask", "db", "upgrade")
    run(project, project_env, "flask", "db", "check")
    passes_its_suite(project, project_env)


def test_update_from_the_oldest_renderable_commit_to_head(
    tmp_path: Path, project_env: Path
) -> None:
    """The longest update a project of this template can take: from the first
    commit on main that renders, to the template as it is now, with the
    user's work."""
    template = template_with_history(tmp_path / "template")
    commits = git(template, "rev-list", "--reverse", "HEAD").split()
    oldest = None
    for commit in commits:
        try:
            copy_as_a_user_would(template, tmp_path / "probe", commit)
        except Exception:  # an early commit that does not render
            shutil.rmtree(tmp_path / "probe", ignore_errors=True)
            continue
        oldest = commit
        break
    assert oldest is not None
    git(template, "tag", "v0.0.1", oldest)
    git(template, "tag", "v0.0.2", "HEAD")

    project = tmp_path / "project"
    copy_as_a_user_would(template, project, "v0.0.1")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Generated")
    run(project, project_env, "flask", "db", "upgrade")
    add_model(project, "order", "Order", ORDER_MODEL)
    run(project, project_env, "flask", "db", "migrate", "-m", "add orders")
    run(project, project_env, "flask", "db", "upgrade")
    readme = project / "README.md"
    readme.write_text(
        (readme.read_text() if readme.exists() else "") + "\nOur notes.\n"
    )
    commit_all(project, "Our work")
    before = snapshot(project)

    result = update_with_cli(project)

    assert result.returncode == 0, result.stdout + result.stderr
    after = snapshot(project)
    assert b"_commit: v0.0.2" in after[".copier-answers.yml"]
    for name, content in before.items():
        if (
            name.startswith(("my_flask_app/models/", "migrations/versions/"))
            or name == "README.md"
        ):
            assert after.get(name) == content, name
    assert sorted(
        n for n in after if n.startswith("migrations/versions/") and n.endswith(".py")
    ) == sorted(
        n for n in before if n.startswith("migrations/versions/") and n.endswith(".py")
    ), "the update must not add a revision to the user's history"
    assert conflicted(project) == set()
    run(project, project_env, "flask", "db", "upgrade")
    run(project, project_env, "flask", "db", "check")
    result = run_tests(project, project_env)
    assert " passed" in result.stdout


def test_update_refuses_to_change_the_package_name(
    template: Path, tmp_path: Path
) -> None:
    """Issue 11: `copier update --data package_name=shop` used to exit 0 with the
    template's files moved to shop/ and the user's models left behind."""
    project = copy_project(template, tmp_path / "project")
    before = snapshot(project)
    process = subprocess.run(
        [
            *(sys.executable, "-m", "copier", "update", "--defaults"),
            *("--data", "package_name=shop"),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode != 0
    last_line = process.stderr.strip().splitlines()[-1]
    assert "package_name cannot change in `copier update`" in last_line
    assert "from 'my_flask_app' to 'shop'" in last_line
    assert '"Renaming the package"' in last_line
    assert snapshot(project) == before
    assert git(project, "status", "--porcelain") == ""
    # Keeping the name still updates.
    update_with_api(project)


def test_update_of_a_project_whose_package_name_is_now_refused_says_why(
    template: Path, tmp_path: Path
) -> None:
    """Issue 19 refuses package names a project could take before (test_app,
    from "Test App"). Updating such a project names its package, the rule it
    breaks and the way out (Copier's CLI offers the default in place of the
    refused answer: the message is not about a rename the user never asked
    for)."""
    config = template / "copier.yml"
    edit(config, "      test_app: tests/test_app.py\n", "")
    commit_all(template, "Template 0.9.0, which accepted test_app")
    git(template, "tag", "v0.9.0")
    git(template, "checkout", "-q", "v1.0.0", "--", "copier.yml")
    commit_all(template, "Template 1.1.0")
    git(template, "tag", "v1.1.0")
    project = tmp_path / "project"
    run_copy(
        str(template),
        project,
        data={"package_name": "test_app"},
        defaults=True,
        vcs_ref="v0.9.0",
        quiet=True,
    )
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Generated from the template")
    before = snapshot(project)
    process = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode != 0
    last_line = process.stderr.strip().splitlines()[-1]
    assert "package_name 'test_app', this project's, is now refused" in last_line
    assert "(tests/test_app.py)" in last_line
    assert '"Renaming the package"' in last_line
    assert "my_flask_app" not in last_line
    assert snapshot(project) == before
