"""Adopting a database made without migrations (create_all, or SQL by hand,
with the server's own constraint names): `flask db upgrade` cannot create what
exists, `flask db-status` says how to adopt it, and the documented path
(stamp, check, rename the constraints to the naming convention's names)
leaves a managed database whose rows are intact and that `flask db check`
accepts. Proven on PostgreSQL and MariaDB, in-process on a MiniProject with
the template's User model."""

from collections.abc import Callable

from ..test_existing_databases import LEGACY_NAME, LEGACY_SCHEMA, RENAME, execute
from .generated_suite import with_users
from .miniproject import MiniProject


def test_a_database_made_without_migrations_is_adopted(
    database: str, make_mini_project: Callable[..., MiniProject]
) -> None:
    backend = database.split(":")[0]
    execute(
        database,
        LEGACY_SCHEMA[backend],
        "INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada')",
    )
    project = make_mini_project(production_engine=backend, database_url=database)
    with_users(project)
    app = project.app()

    def flask(*args: str, code: int = 0) -> str:
        result = project.flask(app, *args)
        assert result.exit_code == code, result.output
        return result.output

    # Without adoption: the upgrade would create a table that exists.
    output = flask("db-status", "--upgrade", code=1)
    assert "has tables (users) but no migration revision" in output
    assert "flask db stamp" in output

    # 1. Record that the database is at the revision describing it.
    flask("db", "stamp", "head")
    # 2. Compare: the only difference is the unique constraint's name.
    output = flask("db", "check", code=1)
    assert f"Detected {LEGACY_NAME[backend]}" in output
    assert "Detected added unique constraint 'uq_users_email'" in output
    # 3. Rename it to the naming convention's name, once, by hand.
    execute(database, RENAME[backend])
    flask("db", "check")  # exits 0: no difference left

    flask("db-status")
    assert execute(database, "SELECT email, name FROM users") == [
        ("ada@example.com", "Ada")
    ]
