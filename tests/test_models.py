"""Models written as the generated README says are Flask-SQLAlchemy models:
`Model.query`, table names from class names, joined-table inheritance, and
`__bind_key__` (see test_binds.py; one on extensions.Base is refused:
tests/library/test_model_bases.py), and they pass mypy --strict."""

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from copier import run_copy

from .helpers import ROOT, add_model, run, run_tests
from .test_update import (
    ORDER_MODEL,
    commit_all,
    conflicted,
    edit,
    git,
    update_with_cli,
)
from .typecheck import mypy

SHOP_MODEL = '''\
"""Order lines; a gift line is an order line with a message."""

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class OrderLine(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[int]

    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "line"}


class GiftLine(OrderLine):
    id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), primary_key=True)
    message: Mapped[str] = mapped_column(String(200))

    __mapper_args__ = {"polymorphic_identity": "gift"}
'''

SHOP_TESTS = '''\
"""Flask-SQLAlchemy's model features, on the schema the migrations built."""

from typing import cast

import pytest
from sqlalchemy import inspect

from my_flask_app.extensions import Model, db
from my_flask_app.models import GiftLine, OrderLine, User


def test_model_is_flask_sqlalchemys_db_model() -> None:
    assert cast(object, Model) is db.Model  # mypy sees the typed stand-in
    assert issubclass(User, db.Model)


def test_tables_are_named_after_the_classes() -> None:
    assert OrderLine.__tablename__ == "order_line"
    assert GiftLine.__tablename__ == "gift_line"


@pytest.mark.usefixtures("app")
def test_model_query() -> None:
    db.session.add_all([OrderLine(quantity=1), OrderLine(quantity=5)])
    db.session.commit()

    lines: list[OrderLine] = OrderLine.query.filter(OrderLine.quantity > 2).all()

    assert [line.quantity for line in lines] == [5]
    assert User.query.count() == 0


@pytest.mark.usefixtures("app")
def test_joined_table_inheritance() -> None:
    db.session.add(GiftLine(quantity=2, message="Happy birthday"))
    db.session.commit()
    db.session.expunge_all()

    (line,) = OrderLine.query.all()

    assert isinstance(line, GiftLine)
    assert line.message == "Happy birthday"
    assert {"order_line", "gift_line"} <= set(inspect(db.engine).get_table_names())
'''


def test_models_have_flask_sqlalchemys_features_and_type_check(
    fresh_project: Callable[..., Path],
    project_env: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    project = fresh_project()
    add_model(project, "shop", "GiftLine", SHOP_MODEL)
    init = project / "my_flask_app" / "models" / "__init__.py"
    init.write_text(
        init.read_text()
        .replace("import GiftLine", "import GiftLine, OrderLine")
        .replace('["GiftLine", ', '["GiftLine", "OrderLine", ')
    )
    (project / "tests" / "test_shop.py").write_text(SHOP_TESTS)
    versions = project / "migrations" / "versions"
    before = set(versions.glob("*.py"))

    run(project, project_env, "flask", "db", "upgrade")
    run(project, project_env, "flask", "db", "migrate", "-m", "order lines")

    (revision,) = set(versions.glob("*.py")) - before
    script = revision.read_text()
    assert 'op.create_table(\n        "order_line"' in script
    assert 'op.create_table(\n        "gift_line"' in script
    assert '["order_line.id"]' in script  # gift_line.id refers to order_line.id
    # The project's whole suite: the shop tests, and the migration tests (the
    # models match the migrations, every revision goes down and up again).
    result = run_tests(project, project_env, "-rA")
    for name in ("is_flask_sqlalchemys", "named_after", "query", "inheritance"):
        assert re.search(rf"PASSED tests/test_shop.py::\S*{name}", result.stdout), name
    mypy(project, project_env, tmp_path_factory)


def test_update_keeps_models_on_base_working_and_switching_to_model_is_free(
    tmp_path: Path, project_env: Path
) -> None:
    """A project generated before extensions.Model existed has its models on
    extensions.Base. After `copier update` they work as before; changing their
    base class to Model (as CHANGELOG suggests) changes no table."""
    if git(ROOT, "rev-parse", "--is-shallow-repository").strip() == "true":
        pytest.skip("needs the history of main; this clone is shallow")
    template = tmp_path / "template"
    git(tmp_path, "clone", "-q", str(ROOT), str(template))
    introduced = git(
        template, "log", "--reverse", "--format=%H", "-S", "Model = db.Model"
    ).split()
    if not introduced:
        pytest.skip("extensions.Model is not committed yet")
    for tag in git(template, "tag", "--list").split():
        git(template, "tag", "-d", tag)
    git(template, "tag", "v0.1.0", f"{introduced[0]}^")
    git(template, "tag", "v0.2.0", "HEAD")
    project = tmp_path / "project"
    run_copy(str(template), project, defaults=True, vcs_ref="v0.1.0", quiet=True)
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Generated")
    run(project, project_env, "flask", "db", "upgrade")
    add_model(project, "order", "Order", ORDER_MODEL)  # on extensions.Base
    run(project, project_env, "flask", "db", "migrate", "-m", "add orders")
    run(project, project_env, "flask", "db", "upgrade")
    commit_all(project, "Our work")
    models = project / "my_flask_app" / "models"
    before = {path.name: path.read_bytes() for path in models.glob("*.py")}

    result = update_with_cli(project)

    assert result.returncode == 0, result.stdout + result.stderr
    assert conflicted(project) == set()
    assert {path.name: path.read_bytes() for path in models.glob("*.py")} == before
    assert b"(Base)" in before["user.py"]
    run(project, project_env, "flask", "db", "upgrade")
    run(project, project_env, "flask", "db", "check")
    run_tests(project, project_env)

    for name in ("user.py", "order.py"):
        edit(models / name, "import Base", "import Model")
        edit(models / name, "(Base):", "(Model):")
    (project / "tests" / "test_query.py").write_text(QUERY_TEST)
    run(project, project_env, "flask", "db", "check")  # the same tables
    result = run_tests(project, project_env, "-rA", "tests/test_query.py")
    assert "PASSED tests/test_query.py::test_models_have_query" in result.stdout


QUERY_TEST = """\
import pytest

from my_flask_app.extensions import db
from my_flask_app.models import Order, User


@pytest.mark.usefixtures("app")
def test_models_have_query() -> None:
    db.session.add(User(email="ada@example.com", name="Ada"))
    db.session.commit()
    assert User.query.one().name == "Ada"
    assert Order.query.count() == 0
"""
