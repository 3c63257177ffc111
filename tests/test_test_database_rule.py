"""The generated suite empties only a database it may: the one the driver
actually connects to must be named as a test database and be none of
production's, whatever the URL's query says; a refused, missing or
unreachable test database stops the run in one paragraph, before any test.

The rule (flask_safe_migrations/disposable.py) is tested in-process against
what each driver itself would do with the URL; the pytest plugin is then run
(with pytester, on a MiniProject: library/generated_suite.py) against real
servers, with a database full of rows that it must not touch.
"""

import json
import re
import secrets
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from flask_safe_migrations import disposable as rule
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL, make_url

from .conftest import require_server
from .library.generated_suite import count_rows, plugin_project, run_in_process
from .servers import SERVERS

pytest_plugins = ["pytester"]

PASSWORD = "s3cret-pw"


def is_test_name(name: str) -> bool:
    return name.lower().startswith("test_") or name.lower().endswith("_test")


# What each driver does with SQLAlchemy's arguments, asked of the driver itself.
def psycopg_database(url: URL) -> str:
    _, kwargs = url.get_dialect()().create_connect_args(url)
    conninfo = kwargs.pop("conninfo", "")  # psycopg.connect(conninfo, **kwargs)
    kwargs = {key: str(value) for key, value in kwargs.items()}
    info = psycopg.conninfo.conninfo_to_dict(
        psycopg.conninfo.make_conninfo(conninfo, **kwargs)
    )
    return str(info.get("dbname") or "")


def pymysql_database(url: URL) -> str:
    _, kwargs = url.get_dialect()().create_connect_args(url)
    with warnings.catch_warnings():  # PyMySQL: 'db' is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        connection = pymysql.connections.Connection(
            defer_connect=True,
            **{**kwargs, "ssl_disabled": True},  # fast: no TLS
        )
    database = connection.db
    return database.decode() if isinstance(database, bytes) else str(database or "")


def sqlite_database(url: URL) -> str:
    """The file SQLite opens, by its name without extension."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("PRAGMA database_list").all()
    finally:
        engine.dispose()
    return Path(next(row[2] for row in rows if row[1] == "main")).stem


NAMES = st.sampled_from(
    ["app", "prod", "latest", "contest", "app_test", "test_app", "TEST_APP", "x_Test"]
) | st.text("abcxyz_TEST", max_size=9)
# Options that name no database, for each driver.
NOISE = {
    True: st.fixed_dictionaries(
        {}, optional={"sslmode": st.just("prefer"), "application_name": NAMES}
    ),
    False: st.fixed_dictionaries(
        {}, optional={"charset": st.just("utf8mb4"), "connect_timeout": st.just("5")}
    ),
}


@st.composite
def server_urls(draw: st.DrawFn) -> URL:
    """A server URL as a user might spell it: a scheme with or without the
    driver, a database in the path or not, and the query keys that name one."""
    scheme = draw(
        st.sampled_from(
            [
                *("postgresql", "postgres", "postgresql+psycopg"),
                *("mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"),
            ]
        )
    )
    postgres = scheme.startswith("postgres")
    keys = ["dbname", "host"] if postgres else ["database", "db", "host"]
    query: dict[str, Any] = dict(draw(NOISE[postgres]))
    for key in draw(st.lists(st.sampled_from(keys), max_size=2)):
        query[key] = draw(NAMES) if key != "host" else draw(st.sampled_from(["h2", ""]))
    if draw(st.booleans()):  # a key given twice
        key = draw(st.sampled_from(keys[:-1]))
        query[key] = (draw(NAMES), draw(NAMES))
    drivername = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg"}
    drivername |= {"mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}
    return URL.create(
        drivername.get(scheme, scheme),  # the generated config's normalisation
        username="u",
        password=PASSWORD,
        host=draw(st.sampled_from(["db", "127.0.0.1", "localhost"])),
        database=draw(st.none() | NAMES),
        query=query,
    )


def assert_one_paragraph(message: str, variable: str) -> None:
    assert "\n" not in message and message.strip() == message
    assert variable in message
    assert PASSWORD not in message


@settings(max_examples=200, deadline=None)
@given(server_urls())
@example(make_url("postgresql+psycopg://u:p@db/x_test?dbname=prod"))
@example(make_url("mysql+pymysql://u:p@db/x_test?database=prod"))
@example(make_url("mariadb+pymysql://u:p@db/?db=prod"))
def test_a_server_url_is_accepted_only_if_the_driver_connects_to_a_test_database(
    url: URL,
) -> None:
    text = url.render_as_string(hide_password=False)
    url = make_url(text)  # as the rule reads it (an empty value is dropped)
    twice = any(isinstance(value, tuple) for value in url.query.values())
    try:
        target = rule.check("TEST_DATABASE_URL", text, {})
    except rule.Refused as refused:
        assert_one_paragraph(str(refused), "TEST_DATABASE_URL")
        accepted = False
    else:
        accepted = True
    if twice:  # a name given twice: refused, whatever the driver would make of it
        assert not accepted, text
        return
    if url.get_backend_name() == "postgresql":
        real = psycopg_database(url)
    else:
        real = pymysql_database(url)
    if accepted:
        assert is_test_name(real), f"{text}: the driver uses {real!r}"
        assert target.database == real
    else:
        # Refused: the driver's database, or another the query names (which a
        # driver could read instead), is not a test database.
        keys = ("dbname", "database", "db")
        named = [str(url.query[key]) for key in keys if key in url.query]
        assert not is_test_name(real) or not all(map(is_test_name, named)), text


@st.composite
def sqlite_urls(draw: st.DrawFn) -> str:
    name = draw(NAMES.filter(lambda name: name.isidentifier()))
    other = draw(NAMES.filter(lambda name: name.isidentifier()))
    return draw(
        st.sampled_from(
            [
                f"sqlite:///{name}.db",
                f"sqlite:///file:{name}.db?uri=true",
                f"sqlite:///file:{name}?uri=true&x={other}_test",
                f"sqlite:///file:{name}%23{other}_test?uri=true",
                f"sqlite:///file:./{name}%3F{other}_test?uri=true",
                f"sqlite:///file:%2E/{name}.db?uri=true&mode=rwc",
                f"sqlite:///file:{name}.db?uri=1",
                f"sqlite:///file:{name}.db",
                f"sqlite:///{other}_test/../{name}.db",
            ]
        )
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(url=sqlite_urls())
@example(url="sqlite:///file:prod?uri=true&x=_test")
@example(url="sqlite:///file:prod%23x_test?uri=true")
def test_a_sqlite_url_is_accepted_only_if_sqlite_opens_a_test_file(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's file: URIs (?uri=true) put the file in a URI whose query and
    fragment are not part of its name."""
    monkeypatch.chdir(tmp_path)
    try:
        rule.check("TEST_DATABASE_URL", url, {})
    except rule.Refused as refused:
        assert_one_paragraph(str(refused), "TEST_DATABASE_URL")
        accepted = False
    else:
        accepted = True
    real = sqlite_database(make_url(url))
    assert accepted == is_test_name(real), f"{url} opens {real!r}"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u@db/app_test?service=prod",
        "postgresql+psycopg://u@db/?conninfo=dbname%3Dprod",
        "postgresql+psycopg://u@db/app_test?conninfo=dbname%3Dprod",
        "mysql+pymysql://u@db/app_test?init_command=USE%20prod",
        "mysql+pymysql://u@db/app_test?read_default_file=%2Fetc%2Fmy.cnf",
        "mariadb+pymysql://u@db/app_test?read_default_group=prod",
    ],
)
def test_options_that_choose_the_database_outside_the_url_are_refused(
    url: str,
) -> None:
    with pytest.raises(rule.Refused, match=r"has the option \w+=") as refused:
        rule.check("TEST_DATABASE_URL", url, {})
    assert_one_paragraph(str(refused.value), "TEST_DATABASE_URL")


@pytest.mark.parametrize(
    ("test_url", "production_url"),
    [
        ("postgresql+psycopg://u@db/app_test", "postgresql://o:pw@DB:5432/app_test"),
        (
            "postgresql+psycopg://u@db/app_test",
            "postgresql+psycopg://o:pw@db/x?dbname=app_test",
        ),
        (
            "postgresql+psycopg://u@localhost/app_test",
            "postgresql://o@127.0.0.1/app_test",
        ),
        ("postgresql+psycopg://u@/app_test", "postgresql://o@localhost:5432/app_test"),
        ("mysql+pymysql://u@db/x?database=app_test", "mariadb+pymysql://o@db/app_test"),
        ("sqlite:///./app_test.db", "sqlite:///file:app_test.db?uri=true"),
    ],
)
def test_the_production_database_is_refused_however_it_is_spelled(
    test_url: str, production_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(rule.Refused, match="same database as DATABASE_URL"):
        rule.check("TEST_DATABASE_URL", test_url, {"DATABASE_URL": production_url})


def test_another_database_on_the_production_server_is_accepted() -> None:
    production = {"DATABASE_URL": "postgresql+psycopg://o:pw@db/app"}
    rule.check("TEST_DATABASE_URL", "postgresql+psycopg://u@db/app_test", production)


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=30)
    | st.sampled_from(['{"analytics": ', "[1, 2]", '{"analytics": 5}', "null", '"x"'])
    | st.dictionaries(
        st.sampled_from(["analytics", "other"]),
        st.none() | st.integers() | st.text(max_size=5) | st.lists(st.integers()),
    ).map(json.dumps)
)
def test_test_sqlalchemy_binds_is_parsed_or_refused_in_one_paragraph(
    value: str,
) -> None:
    try:
        urls = rule.bind_urls("TEST_SQLALCHEMY_BINDS", value, ["analytics"])
    except rule.Refused as refused:
        assert_one_paragraph(str(refused), "TEST_SQLALCHEMY_BINDS")
        assert "analytics" in str(refused)
    else:
        assert set(urls) == {"analytics"}
        assert isinstance(urls["analytics"], str)


def test_a_test_named_link_to_another_sqlite_file_is_refused(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "prod.db").close()
    (tmp_path / "app_test.db").symlink_to(tmp_path / "prod.db")
    with pytest.raises(rule.Refused, match="connects to the database 'prod'"):
        rule.check("TEST_DATABASE_URL", f"sqlite:///{tmp_path / 'app_test.db'}", {})


# The plugin, run as a project's suite runs it.


@pytest.fixture
def suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., pytest.RunResult]:
    """Run the suite of a MiniProject whose production engine is ``engine``,
    with TEST_DATABASE_URL=``url``."""

    def _run(url: str, engine: str = "postgresql") -> pytest.RunResult:
        with plugin_project(
            pytester, monkeypatch, test_database_url=url, production_engine=engine
        ) as project:
            return run_in_process(pytester, project, "tests")

    return _run


def refusal(result: pytest.RunResult) -> str:
    """The run's one message: it stopped before any test, and said why."""
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret not in (0, 1), output
    assert "passed" not in output and "Traceback" not in output
    assert "error" not in "\n".join(result.outlines).lower(), output
    (line,) = [line for line in result.errlines if line.strip()]
    assert line.startswith("ERROR: ")
    assert PASSWORD not in line
    return line.removeprefix("ERROR: ")


def test_a_refused_test_database_stops_the_run_before_any_test(
    suite: Callable[..., pytest.RunResult],
) -> None:
    """No test runs, so none passes: the run says refused."""
    result = suite(f"postgresql://u:{PASSWORD}@db/app")
    assert "TEST_DATABASE_URL connects to the database 'app'" in refusal(result)


@pytest.fixture(params=["postgresql", "mysql"])
def production(request: pytest.FixtureRequest) -> Iterator[tuple[str, URL]]:
    """A database that is not for tests (its name says so), with a table of
    1000 rows: the engine and the URL that reaches it."""
    server = require_server(request.config, request.param)
    name = f"tpl_{secrets.token_hex(4)}_orders"
    admin = sa.create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    url = server.admin_url.set(database=name)
    data = sa.create_engine(url)
    try:
        with data.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
            connection.execute(
                sa.text("INSERT INTO orders (id) VALUES (:id)"),
                [{"id": n} for n in range(1000)],
            )
        yield request.param, url
    finally:
        data.dispose()
        force = " WITH (FORCE)" if request.param == "postgresql" else ""
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        admin.dispose()


def test_a_query_that_redirects_to_a_real_database_leaves_every_row(
    production: tuple[str, URL], suite: Callable[..., pytest.RunResult]
) -> None:
    """The path names a test database; the query sends the driver to a
    production one (psycopg's ?dbname=, PyMySQL's ?database=)."""
    engine, url = production
    key = "dbname" if engine == "postgresql" else "database"
    redirect = url.set(
        drivername=url.get_backend_name(),
        database=f"{url.database}_test",
        query={key: url.database or ""},
    ).render_as_string(hide_password=False)

    result = suite(redirect, engine)

    assert f"connects to the database {url.database!r}" in refusal(result)
    assert count_rows(url, "orders") == 1000


def missing_database(request: pytest.FixtureRequest, engine: str) -> tuple[URL, str]:
    """A URL of the server of ``engine`` naming a database that does not exist
    (with a password, where the server ignores it), and the database's name."""
    server = require_server(request.config, engine)
    name = f"tpl_{secrets.token_hex(4)}_test"  # never created
    url = server.admin_url.set(
        drivername=engine, password=PASSWORD if engine == "postgresql" else None
    )
    return url.set(database=name), name


def assert_names_the_missing_database(message: str, url: URL, name: str) -> None:
    assert message.startswith(f"TEST_DATABASE_URL names the database {name!r}")
    assert f"on {url.host}:{url.port}, which does not exist" in message
    postgres = url.get_backend_name() == "postgresql"
    fix = f"createdb -h {url.host}" if postgres else "CREATE DATABASE"
    assert re.search(rf"\({fix}.* {name};?\)", message), message
    assert PASSWORD not in message


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_missing_test_database_is_explained_with_the_fix(
    engine: str, request: pytest.FixtureRequest
) -> None:
    url, name = missing_database(request, engine)
    driver = SERVERS[engine].driver
    with pytest.raises(rule.Refused) as refused:
        rule.check_server(
            "TEST_DATABASE_URL", url.set(drivername=f"{engine}+{driver}"), {}
        )
    assert_one_paragraph(str(refused.value), "TEST_DATABASE_URL")
    assert_names_the_missing_database(str(refused.value), url, name)


def test_a_missing_test_database_stops_the_run_in_one_paragraph(
    request: pytest.FixtureRequest, suite: Callable[..., pytest.RunResult]
) -> None:
    """Not one error per test, each with the driver's traceback."""
    url, name = missing_database(request, "postgresql")
    missing = url.render_as_string(hide_password=False)

    result = suite(missing)

    assert_names_the_missing_database(refusal(result), url, name)


@pytest.mark.parametrize("production", ["mysql"], indirect=True)
def test_the_server_is_asked_which_database_the_connection_is_in(
    production: tuple[str, URL], make_database: Callable[[str], str]
) -> None:
    """What the URL cannot show (SQL run on connecting, a pooler's alias) is
    caught before the first test: here `USE` moves the connection."""
    _, url = production
    switching = make_url(make_database("mysql")).update_query_dict(
        {"init_command": f"USE {url.database}"}
    )
    with pytest.raises(rule.Refused, match="put the connection in the database") as e:
        rule.check_server(
            "TEST_DATABASE_URL", switching.set(drivername="mysql+pymysql"), {}
        )
    assert_one_paragraph(str(e.value), "TEST_DATABASE_URL")
