"""A database made without migrations, as the adoption tests make it: the
legacy schemas, the names `flask db check` reports, the one-off SQL that
migrations/README prescribes, and ``execute()`` (tests/test_offline_sql.py uses
it too). The test is tests/library/test_existing_databases.py, in-process on a
MiniProject on each server."""

from .servers import engine

# The example User table as an app without migrations would have made it: the
# same columns, the server's default constraint names.
LEGACY_SCHEMA = {
    "postgresql": (
        "CREATE TABLE users (id SERIAL PRIMARY KEY,"
        " email VARCHAR(255) NOT NULL UNIQUE, name VARCHAR(100) NOT NULL,"
        " created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    ),
    "mysql": (
        "CREATE TABLE users (id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " email VARCHAR(255) NOT NULL UNIQUE, name VARCHAR(100) NOT NULL,"
        " created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    ),
}
# What `flask db check` reports, and the one-off SQL that README prescribes.
LEGACY_NAME = {
    "postgresql": "removed unique constraint 'users_email_key'",
    "mysql": "removed index 'email'",
}
RENAME = {
    "postgresql": (
        "ALTER TABLE users RENAME CONSTRAINT users_email_key TO uq_users_email;"
        " ALTER TABLE users RENAME CONSTRAINT users_pkey TO pk_users"
    ),
    "mysql": "ALTER TABLE users RENAME INDEX email TO uq_users_email",
}


def execute(url: str, *statements: str) -> list[tuple[object, ...]]:
    bind = engine(url)
    rows: list[tuple[object, ...]] = []
    with bind.begin() as connection:
        for statement in statements:
            for part in statement.split("; "):
                result = connection.exec_driver_sql(part)
                if result.returns_rows:
                    rows = [tuple(row) for row in result]
    bind.dispose()
    return rows
