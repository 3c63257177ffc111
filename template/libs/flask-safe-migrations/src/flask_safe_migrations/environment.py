"""Every environment variable and command option the project reads, parsed here.

One function per kind of value. Each returns the value, or raises ConfigError
with one paragraph that names the variable (or option), shows the bad value
(never a password: URLs are shown only once parsed, with the password hidden,
and JSON that may hold one is not shown at all) and says how to fix it.

Who reads what:

- configure() (app_setup.py; the project's config.py calls it): DATABASE_URL,
  SECRET_KEY, FLASK_SECRET_KEY, FLASK_DEBUG, FLASK_SESSION_COOKIE_SECURE,
  FLASK_TESTING, TRUSTED_PROXIES, DATABASE_CONNECT_TIMEOUT,
  FLASK_SQLALCHEMY_BINDS, FLASK_SQLALCHEMY_ENGINE_OPTIONS (and any other
  FLASK_* setting, which Flask reads as JSON);
- wsgi.py: refuses debug and testing mode (production());
- gunicorn.conf.py: HOST, PORT, WEB_CONCURRENCY;
- timeouts.py: MIGRATION_LOCK_TIMEOUT, MIGRATION_STATEMENT_TIMEOUT,
  MIGRATION_LOCK_RETRIES, and the same settings in a revision file;
- commands.py: `flask db-wait --timeout` (or DB_WAIT_TIMEOUT), `flask
  db-baseline REVISION --scratch-url URL`;
- pytest_plugin.py: TEST_DATABASE_URL and TEST_SQLALCHEMY_BINDS (which
  disposable.py judges), CI.

docs/configuration.md documents them all.

scripts/start.sh checks FLASK_DEBUG, FLASK_TESTING, PORT and WEB_CONCURRENCY
itself, in the same spellings, before it starts any Python.
"""

import contextlib
import importlib
import inspect
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import click
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}
# The longest timeout every database accepts: PostgreSQL's are milliseconds in
# a 32-bit integer (about 24 days).
MAX_SECONDS = 2_147_483
# Bare scheme -> the driver this project installs.
DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


class ConfigError(click.ClickException):
    """A setting is missing or wrong; the message names it and says how to fix it.

    A ClickException, so the `flask` command prints the message instead of a
    traceback.
    """


def shown(value: object) -> str:
    """``value`` as a message quotes it: on one line, and not too long."""
    text = repr(str(value))
    return text if len(text) <= 60 else text[:56] + "...'"


def flag(name: str, value: object) -> bool:
    """A yes-or-no setting: True, False, 1, 0 or a word; anything else is refused."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower()
    if word in TRUE | FALSE:
        return word in TRUE
    raise ConfigError(
        f"{name}={shown(value)} is not a yes-or-no value. Use 1 or 0 (true/false,"
        " yes/no and on/off work too)."
    )


def whole_number(
    name: str,
    value: object,
    *,
    default: int,
    minimum: int = 0,
    maximum: int,
    fix: str = "",
) -> int:
    """A count from ``minimum`` to ``maximum``; None or "" gives ``default``.
    ``fix``: how to correct it, when not in the environment."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        number = int(value)
    if number is None or not minimum <= number <= maximum:
        raise ConfigError(
            f"{name}={shown(value)} is not a whole number from {minimum} to"
            f" {maximum}. {fix or 'Set it to one, or unset it'} for the"
            f" default ({default})."
        )
    return number


def seconds(
    name: str, value: object, *, default: float, zero: str = "", fix: str = ""
) -> float:
    """A duration in seconds, above 0 (or 0, if ``zero`` says what it means)
    and at most MAX_SECONDS; None or "" gives ``default``. ``fix``: how to
    correct it, when not in the environment."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and value.strip().isascii():
        with contextlib.suppress(ValueError):
            number = float(value)
    if (number == 0 and zero) or 0.001 <= number <= MAX_SECONDS:
        return number
    wanted = f"0 ({zero}) or a number" if zero else "a number"
    raise ConfigError(
        f"{name}={shown(value)} is not {wanted} of seconds from 0.001 to"
        f" {MAX_SECONDS} (about 24 days). {fix or 'Set it to one, or unset it'}"
        f" for the default ({default:g})."
    )


def text(name: str, value: str | None) -> str | None:
    """A string that, when set, is not blank."""
    if value is not None and not value.strip():
        raise ConfigError(f"{name} is set but empty. Give it a value or unset it.")
    return value


def host(name: str, value: str | None, *, default: str) -> str:
    """A host name or address to listen on (an IPv6 address in brackets)."""
    if value is None:
        return default
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        raise ConfigError(
            f"{name}={shown(value)} is not a host name or address. Use one such"
            f" as 127.0.0.1, or unset it for the default ({default}: every"
            " interface)."
        )
    return f"[{value}]" if ":" in value and not value.startswith("[") else value


def revision(name: str, value: str) -> str:
    """A revision id, or the start of one, as `flask db history` lists them."""
    if not value.strip() or not value.isprintable() or value != value.strip():
        raise ConfigError(
            f"{name}={shown(value)} is not a revision. Give the id of one, as"
            " `flask db history` lists them, such as 3f1a9c2b7d40."
        )
    return value


def json_object(name: str, value: object, example: str) -> dict[str, Any]:
    """A JSON object (Flask's from_prefixed_env has parsed it, or left text
    that is not JSON). The value is never shown: it may hold a password."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(
                f"{name} is not valid JSON ({exc}). Give a JSON object, such as"
                f" {example}, quoted for the shell."
            ) from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"{name} must be a JSON object, such as {example}, not a"
            f" {_json_kind(value)}."
        )
    return value


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple):
        return "list"
    return "string" if isinstance(value, str) else type(value).__name__


def binds(name: str, value: object) -> dict[str, Any]:
    """The bind name -> database URL object (SQLALCHEMY_BINDS), each URL
    parsed like DATABASE_URL; a bind may also be an object of create_engine()
    options with its URL under "url"."""
    example = '{"analytics": "postgresql://user:password@host/analytics"}'
    parsed = json_object(name, value, example)
    result: dict[str, Any] = {}
    for key, bind in parsed.items():
        where = f"{name}[{key!r}]"
        if isinstance(bind, URL | str):
            result[key] = database_url(bind, where)
        elif isinstance(bind, dict) and isinstance(bind.get("url"), URL | str):
            result[key] = {**bind, "url": database_url(bind["url"], f"{where}.url")}
        else:
            raise ConfigError(
                f"{where} must be a database URL (a string), or an object with"
                f' one under "url", not a {_json_kind(bind)}. Use the form'
                f" {example}."
            )
    return result


def engine_options(name: str, value: object) -> dict[str, Any]:
    """create_engine() options (SQLALCHEMY_ENGINE_OPTIONS); SQLAlchemy checks
    each option when the app makes its engine."""
    options = json_object(name, value, '{"pool_size": 10}')
    if not isinstance(options.get("connect_args", {}), dict):
        raise ConfigError(
            f"{name}'s connect_args must be a JSON object of the driver's"
            ' connect() arguments, such as {"application_name": "web"}.'
        )
    return options


def database_url(value: str | URL, name: str = "DATABASE_URL") -> str:
    """Return ``value`` as a URL string with this project's drivers filled in;
    ``name``: where it came from, for the messages.

    Messages never show the password: a URL is shown only once SQLAlchemy has
    parsed it, and then with the password hidden.

    >>> database_url("postgres://app:pw@db.example.com/app")
    'postgresql+psycopg://app:pw@db.example.com/app'
    """
    raw = value if isinstance(value, str) else ""
    try:
        url = make_url(value)
    except ArgumentError:
        scheme = raw.partition(":")[0] if "://" in raw else ""
        raise ConfigError(
            f"{name} is not a database URL"
            + (
                f" (its scheme {shown(scheme)} is not a word)"
                if scheme
                else " (it has no scheme such as postgresql://)"
            )
            + ". Use the form postgresql://user:password@host:5432/dbname,"
            " mysql://user:password@host:3306/dbname or sqlite:///file.db."
            f" {PERCENT_ENCODE}"
        ) from None
    except ValueError:  # the port is not a number
        raise ConfigError(
            f"{name}'s port is not a number. If the user or password holds"
            f" a reserved character, that is where the URL was cut. {PERCENT_ENCODE}"
        ) from None
    if url.host and "@" in url.host:
        raise ConfigError(f"{name} has an '@' after its host part. {PERCENT_ENCODE}")
    hidden = shown(url.render_as_string(hide_password=True))
    if url.drivername in DRIVERS:
        url = url.set(drivername=DRIVERS[url.drivername])
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            f"{name} {hidden} names an unknown database type"
            f" {shown(url.drivername)}. Use postgresql://, mysql:// or sqlite:///."
        ) from None
    try:
        # Only a driver other than the project's: a project installs its own
        # engine's driver only, and other engines' URLs convert without theirs.
        if url.drivername not in DRIVERS.values():
            dialect.import_dbapi()
    except ImportError:
        raise ConfigError(
            f"{name} {hidden} names the driver {shown(url.get_driver_name())},"
            " which is not installed. Leave the driver out (postgresql://,"
            " mysql://: the project's own drivers) or add it to the project's"
            " dependencies."
        ) from None
    if url.get_backend_name() in {"mysql", "mariadb"} and "charset" not in url.query:
        # MySQL's "utf8" stores only 3-byte characters; emoji need utf8mb4.
        url = url.update_query_dict({"charset": "utf8mb4"})
    if url.get_driver_name() == "pymysql":
        _check_pymysql_options(url, f"{name} {hidden}")
    return url.render_as_string(hide_password=False)


PERCENT_ENCODE = (
    "Percent-encode any @, :, / or ? in the user name or password"
    " (@ is %40, : is %3A, / is %2F, ? is %3F), for example with"
    " python -c 'import urllib.parse; print(urllib.parse.quote(input(), safe=\"\"))'."
)


def _check_pymysql_options(url: URL, where: str) -> None:
    """Refuse URL options PyMySQL would reject at the first connection
    (``where``: the URL, named, for the messages)."""
    try:
        connections = importlib.import_module("pymysql.connections")
    except ImportError:
        return  # the driver-missing message comes when the engine is made
    try:
        _, arguments = url.get_dialect()().create_connect_args(url)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} has an option of the wrong type ({exc}).") from None
    known = inspect.signature(connections.Connection.__init__).parameters
    unknown = sorted(set(arguments) - set(known))
    if unknown:
        raise ConfigError(
            f"{where} has options PyMySQL does not know:"
            f" {', '.join(unknown)}. Remove them or use PyMySQL's names"
            " (https://pymysql.readthedocs.io/en/latest/modules/connections.html)."
        )


def production(config: Mapping[str, Any]) -> None:
    """Refuse to serve production traffic in debug or testing mode: the
    debugger runs any code a visitor sends, and both modes skip the secret-key
    and database checks and send session cookies over plain HTTP."""
    for variable, key in (("FLASK_DEBUG", "DEBUG"), ("FLASK_TESTING", "TESTING")):
        if config.get(key):
            raise ConfigError(
                f"{variable} is on, and production servers never run in debug or"
                f" testing mode (no secret-key or database checks, cookies over"
                f" HTTP). Unset {variable} (or set it to 0) here; for development"
                " use `flask run`."
            )
