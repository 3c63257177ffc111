"""`copier update` brings template changes into a project without clobbering
the user's work. Real git repositories, real tagged template versions, real
updates through Copier's CLI and its Python API."""

import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from copier import run_copy, run_update

from .helpers import ROOT, add_model, run, run_tests

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


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A git repository of this template as it is now, tagged v1.0.0."""
    return template_repo(tmp_path / "template")


def template_repo(repo: Path) -> Path:
    """Make ``repo`` a git repository of this template as it is now, tagged
    v1.0.0."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "Template 1.0.0")
    git(repo, "tag", "v1.0.0")
    return repo


def release_1_1(template: Path) -> None:
    """A realistic template release: env.py, the CI file and config.py change,
    a file is added and one removed, and the user-owned examples change too
    (which must not reach existing projects)."""
    t = template / "template"
    edit(
        t / "migrations/env.py.jinja",
        "SETTINGS = settings.load()\n",
        "SETTINGS = settings.load()  # {{ package_name }}/migration_settings.py\n",
    )
    edit(
        t / "{{package_name}}/migration_tools/locking.py",
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
        '"secret", "secret-key"}',
        '"secret", "secret-key", "password"}',
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


def do_user_work(project: Path, venv: Path) -> None:
    """What a user does in the weeks after generating the project."""

    def flask(*args: str) -> None:
        run(project, venv, "flask", *args)

    package = project / "my_flask_app"
    flask("db", "upgrade")
    # A model of their own, with its revision.
    add_model(project, "order", "Order", ORDER_MODEL)
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
    # Their README, their settings, and a template file they do not want.
    with (project / "README.md").open("a") as readme:
        readme.write("\n## Operations\n\nPage the on-call engineer before migrating.\n")
    config = package / "config.py"
    edit(config, "MIN_SECRET_KEY_LENGTH = 32", "MIN_SECRET_KEY_LENGTH = 48")
    edit(
        config,
        '    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}\n',
        '    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}\n'
        '    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024\n',
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
    else:
        update_with_api(project)

    after = snapshot(project)
    # The template's changes arrived in the files it owns.
    assert (
        "SETTINGS = settings.load()  # my_flask_app/migration_settings.py\n"
        in after["migrations/env.py"].decode()
    )
    locking = after["my_flask_app/migration_tools/locking.py"].decode()
    assert "LOCK_TIMEOUT_SECONDS = 900" in locking
    assert b"uv run flask db history" in after[".github/workflows/ci.yml"]
    assert ".editorconfig" in after
    assert "migrations/versions/.gitkeep" not in after
    assert b"_commit: v1.1.0" in after[".copier-answers.yml"]
    # Every file the user owns is byte for byte what the user left.
    for name in (*USER_OWNED, *revisions_before):
        assert after[name] == before[name], name
    assert (
        sorted(n for n in after if n.startswith("migrations/versions/"))
        == revisions_before
    )
    assert "LICENSE" not in after, "a file the user deleted came back"
    # The only conflict is where user and template changed adjacent lines of a
    # template-owned file; Copier marks it inline.
    assert conflicted(project) == {"my_flask_app/config.py"}
    config = after["my_flask_app/config.py"].decode()
    ours, theirs = (
        config.split("<<<<<<< before updating\n")[1]
        .split(">>>>>>> after updating")[0]
        .split("=======\n")
    )
    assert "MIN_SECRET_KEY_LENGTH = 48" in ours
    assert '"secret-key", "password"}' in theirs
    assert 'app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024' in config  # merged

    # The user resolves it, keeping both changes; then everything works.
    resolved = theirs.replace(
        "MIN_SECRET_KEY_LENGTH = 32", "MIN_SECRET_KEY_LENGTH = 48"
    )
    start = config.index("<<<<<<< before updating\n")
    end = config.index(">>>>>>> after updating") + len(">>>>>>> after updating\n")
    (project / "my_flask_app/config.py").write_text(
        config[:start] + resolved + config[end:]
    )
    assert conflicted(project) == set()
    result = run_tests(project, project_env)
    assert " passed" in result.stdout
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
    assert ".github/workflows/ci.yml" not in files
    assert b"postgres:17" in files[".gitlab-ci.yml"]
    assert b"POSTGRES_PASSWORD" in files["compose.yaml"]
    assert b"DATABASE_URL is not set" in files["my_flask_app/config.py"]
    database = make_database("postgresql")
    run(project, project_env, "flask", "db", "upgrade", DATABASE_URL=database)
    run(project, project_env, "flask", "db", "check", DATABASE_URL=database)
    result = run_tests(
        project, project_env, TEST_DATABASE_URL=make_database("postgresql")
    )
    assert " passed" in result.stdout


def failing_tests(project: Path, venv: Path) -> set[str]:
    result = run_tests(project, venv, "-rf", check=False)
    return {
        line.split()[1]
        for line in result.stdout.splitlines()
        if line.startswith("FAILED ")
    }


def copy_as_a_user_would(template: Path, destination: Path, ref: str) -> None:
    """Render with Copier's default warning handling: an early commit's
    validators emit warnings that pytest's settings would turn into errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_copy(str(template), destination, defaults=True, vcs_ref=ref, quiet=True)


def test_update_from_the_oldest_renderable_commit_to_head(
    tmp_path: Path, project_env: Path
) -> None:
    """The longest update a project of this template can take: from the first
    commit on main that renders, to HEAD (committed), with the user's work."""
    shallow = git(ROOT, "rev-parse", "--is-shallow-repository").strip()
    if shallow == "true":
        pytest.skip("needs the full history of main; this clone is shallow")
    template = tmp_path / "template"
    git(tmp_path, "clone", "-q", str(ROOT), str(template))
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
    for tag in git(template, "tag", "--list").split():  # releases of this repo
        git(template, "tag", "-d", tag)
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
    failing_before = failing_tests(project, project_env)

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
    assert failing_tests(project, project_env) <= failing_before


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
