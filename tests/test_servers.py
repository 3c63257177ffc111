"""The database fixtures: a fresh database per test, dropped afterwards, and an
unreachable server that skips its tests locally but fails them in CI."""

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .helpers import ROOT
from .servers import Server, engine


def database_exists(server: Server, name: str) -> bool:
    admin = sa.create_engine(server.admin_url)
    try:
        with admin.connect() as connection:
            sql = (
                "SELECT 1 FROM pg_database WHERE datname = :name"
                if server.engine == "postgresql"
                else "SELECT 1 FROM information_schema.schemata"
                " WHERE schema_name = :name"
            )
            return connection.execute(sa.text(sql), {"name": name}).first() is not None
    finally:
        admin.dispose()


def test_each_test_gets_an_empty_database_that_is_dropped_after_it(
    server: Server,
) -> None:
    with server.database() as url:
        name = make_url(url).database
        assert name and "test" in name  # the generated conftest insists
        assert database_exists(server, name)
        bind = engine(url)
        assert sa.inspect(bind).get_table_names() == []
        bind.dispose()
    assert not database_exists(server, name)


@pytest.mark.parametrize(
    ("ci", "option", "outcome"),
    [
        ("", [], "skipped"),
        ("true", [], "failed"),
        ("", ["--require-databases"], "failed"),
    ],
    ids=["local-skips", "ci-fails", "required-fails"],
)
def test_unreachable_server_skips_locally_and_fails_when_required(
    ci: str, option: list[str], outcome: str
) -> None:
    test = f"{__file__}::test_each_test_gets_an_empty_database_that_is_dropped_after_it"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider"),
            *(f"{test}[postgresql]", *option),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "CI": ci,
            "TEMPLATE_TEST_POSTGRESQL_URL": "postgresql://postgres@127.0.0.1:1/postgres",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"1 {outcome}" in result.stdout, result.stdout + result.stderr
    assert "postgresql server at 127.0.0.1:1 is unreachable" in result.stdout
    assert "Start it with `pg_ctlcluster --skip-systemctl-redirect" in result.stdout
