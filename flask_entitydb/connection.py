"""Turning ``DB_CONNECTION_STRING`` into a SQLAlchemy URL and engine options.

This is where the connection string format users already have keeps working, where
``ssl=true`` becomes real, verified TLS, and where each dialect gets the engine defaults
that keep long-running apps healthy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .errors import ConfigurationError
from .masking import mask_text, mask_unparsed, mask_url

log = logging.getLogger("flask_entitydb")

TRUE_WORDS = frozenset({"true", "1", "yes", "on", "required", "require"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", "disabled", "disable"})

MYSQL_POOL_RECYCLE = 3600
"""Seconds after which a pooled MySQL connection is replaced (server default
``wait_timeout`` is 28800)."""

# driver name -> what to install, for the error message when the driver is missing
_DRIVER_INSTALL_HINTS: dict[str, str] = {
    "mysqldb": "pip install flask-entitydb[mysql]",
    "psycopg": "pip install flask-entitydb[postgresql]",
    "psycopg2": "pip install psycopg2-binary (or use 'postgresql+psycopg://' with "
    "pip install flask-entitydb[postgresql])",
    "pymysql": "pip install pymysql",
    "mariadbconnector": "pip install mariadb",
    "mysqlconnector": "pip install mysql-connector-python",
    "asyncmy": "pip install asyncmy",
    "aiomysql": "pip install aiomysql",
    "asyncpg": "pip install asyncpg",
    "pg8000": "pip install pg8000",
}


def parse_url(raw: str | URL, source: str) -> URL:
    """Parse a connection string and check that its dialect and driver are usable.

    :param raw: the connection string, as configured.
    :param source: where it came from, named in error messages.
    :raises ConfigurationError: malformed URL, unknown dialect or missing driver package.
    """
    if isinstance(raw, URL):
        url = raw
    else:
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigurationError(
                f"{source} is empty or not a string ({type(raw).__name__}); set it to a URL"
                " such as 'mysql+mysqldb://user:password@host:3306/name'."
            )
        try:
            url = make_url(raw.strip())
        except (ArgumentError, ValueError):
            raise ConfigurationError(
                f"{source} is not a valid database URL: '{mask_unparsed(raw)}'; use the form"
                " 'dialect+driver://user:password@host:port/database'."
            ) from None
    if url.host and "@" in url.host:
        raise ConfigurationError(
            f"{source} has an '@' after the password in"
            f" '{mask_text(url.render_as_string(hide_password=False))}'; write an '@' inside"
            " the user name or password as '%40'."
        )
    if url.port is not None and not 0 < url.port < 65536:
        raise ConfigurationError(
            f"{source} has port {url.port} in '{mask_url(url)}'; use a port from 1 to 65535."
        )
    try:
        dialect_cls = url.get_dialect()
    except NoSuchModuleError:
        raise ConfigurationError(
            f"{source} names an unknown database dialect '{url.drivername}' in"
            f" '{mask_url(url)}'; use 'mysql+mysqldb', 'postgresql+psycopg' or 'sqlite'."
        ) from None
    try:
        dialect_cls.import_dbapi()
    except ImportError as exc:
        driver = url.get_driver_name()
        hint = _DRIVER_INSTALL_HINTS.get(driver, f"pip install {driver}")
        raise ConfigurationError(
            f"{source} uses the '{url.drivername}' driver, which is not installed"
            f" ({exc}); install it with: {hint}."
        ) from None
    return url


def _bool_word(value: str, name: str, source: str, url: URL) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(
        f"{source} has '{name}={value}' in '{mask_url(url)}'; use '{name}=true' or '{name}=false'."
    )


def _single(url: URL, key: str) -> str | None:
    value = url.query.get(key)
    if value is None or isinstance(value, str):
        return value
    return value[-1]


_MYSQLDB_SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
_MYSQL_TLS_FILES = ("ssl_ca", "ssl_capath", "ssl_cert", "ssl_key", "ssl_cipher")
# PostgreSQL sslmode values that do not guarantee TLS, and those that demand it
_PG_NO_TLS_MODES = frozenset({"disable", "allow", "prefer"})


def _check_tls_contradictions(url: URL, want_tls: bool | None, source: str) -> None:
    """Refuse ``ssl=`` combined with driver TLS parameters that say the opposite.

    mysqlclient on MariaDB Connector/C encrypts whenever a CA or key is given, whatever
    ``ssl_mode`` says, so ``ssl=false`` with ``ssl_ca`` could not be honoured.
    """
    backend = url.get_backend_name()
    if backend in {"mysql", "mariadb"}:
        mode = _single(url, "ssl_mode")
        if (
            url.get_driver_name() == "mysqldb"
            and mode is not None
            and mode not in _MYSQLDB_SSL_MODES
        ):
            raise ConfigurationError(
                f"{source} has 'ssl_mode={mode}' in '{mask_url(url)}'; use one of"
                f" {', '.join(repr(m) for m in _MYSQLDB_SSL_MODES)} (upper case)."
            )
        if want_tls is True and mode is not None and mode.upper() in {"DISABLED", "PREFERRED"}:
            raise ConfigurationError(
                f"{source} sets both 'ssl=true' and 'ssl_mode={mode}' in '{mask_url(url)}';"
                " remove 'ssl_mode' (TLS is then required)."
            )
        given = [key for key in _MYSQL_TLS_FILES if key in url.query]
        if want_tls is False and (given or (mode is not None and mode.upper() != "DISABLED")):
            name = given[0] if given else "ssl_mode"
            raise ConfigurationError(
                f"{source} sets both 'ssl=false' and '{name}' in '{mask_url(url)}', which"
                " turns TLS on; remove one of them."
            )
    elif backend == "postgresql":
        mode = _single(url, "sslmode")
        if want_tls is None or mode is None:
            return
        if (mode.lower() in _PG_NO_TLS_MODES) == want_tls:
            raise ConfigurationError(
                f"{source} sets both 'ssl={'true' if want_tls else 'false'}' and"
                f" 'sslmode={mode}' in '{mask_url(url)}'; remove one of them."
            )


def prepare_url(url: URL, source: str) -> tuple[URL, dict[str, Any], bool]:
    """Apply flask-entitydb's meaning of ``ssl=`` and the dialect's defaults.

    :returns: the URL to hand to SQLAlchemy, engine option defaults for its dialect, and
        whether every new connection must be checked for TLS.
    """
    backend = url.get_backend_name()
    ssl_value = _single(url, "ssl")
    want_tls = None if ssl_value is None else _bool_word(ssl_value, "ssl", source, url)
    if ssl_value is not None:
        url = url.difference_update_query(["ssl"])
    _check_tls_contradictions(url, want_tls, source)
    defaults: dict[str, Any] = {}
    require_tls = False

    if backend == "sqlite":
        if want_tls is not None:
            raise ConfigurationError(
                f"{source} sets 'ssl' for SQLite in '{mask_url(url)}'; SQLite is a local"
                " file and has no TLS, remove the 'ssl' parameter."
            )
    elif backend in {"mysql", "mariadb"}:
        defaults.update(pool_recycle=MYSQL_POOL_RECYCLE)
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        if want_tls:
            require_tls = True
            if url.get_driver_name() == "mysqldb" and "ssl_mode" not in url.query:
                defaults["connect_args"] = {"ssl_mode": "REQUIRED"}
            elif url.get_driver_name() == "pymysql" and not any(
                key.startswith("ssl_") for key in url.query
            ):
                defaults["connect_args"] = {"ssl": {"check_hostname": False}}
        elif (
            want_tls is False and url.get_driver_name() == "mysqldb" and "ssl_mode" not in url.query
        ):
            defaults["connect_args"] = {"ssl_mode": "DISABLED"}
    elif backend == "postgresql":
        if want_tls is not None and "sslmode" not in url.query:
            url = url.update_query_dict({"sslmode": "require" if want_tls else "disable"})
    elif want_tls is not None:
        raise ConfigurationError(
            f"{source} sets 'ssl' in '{mask_url(url)}', which flask-entitydb only understands"
            f" for MySQL, MariaDB and PostgreSQL; use the '{backend}' driver's own TLS options."
        )
    return url, defaults, require_tls


def check_option_types(options: Mapping[Any, Any], blame: str) -> None:
    """Check that ``options`` can be merged and passed as ``create_engine(**options)``.

    :raises ConfigurationError: a key is not a string, or ``connect_args`` is not a dict.
    """
    for key in options:
        if not isinstance(key, str):
            raise ConfigurationError(
                f"{blame} has the key {key!r}, which is not a string; use create_engine()"
                " keyword names such as 'pool_size'."
            )
    connect_args = options.get("connect_args", {})
    if not isinstance(connect_args, Mapping) or not all(
        isinstance(key, str) for key in connect_args
    ):
        raise ConfigurationError(
            f"{blame} has a 'connect_args' that is not a dict with string keys"
            f" ({type(connect_args).__name__}); use a dict of driver connect() arguments."
        )


def check_engine(url: URL, options: Mapping[str, Any], blame: str) -> None:
    """Create, but never connect, an engine from ``url`` and ``options``, so that URL
    parameters and engine options the dialect or pool refuse fail now, not on first use.

    :param blame: the setting named as the cause in the message.
    :raises ConfigurationError: :func:`sqlalchemy.create_engine` refused them.
    """
    try:
        # the way Flask-SQLAlchemy creates it, string values coerced alike
        engine = sa.engine_from_config({**options, "url": url}, prefix="")
    except (TypeError, ValueError, AttributeError, ArgumentError) as exc:
        reason = mask_text(str(exc)).strip().split("\n")[0] or type(exc).__name__
        reason = reason.split(", using configuration")[0].rstrip(". ")
        raise ConfigurationError(
            f"{blame} is not accepted by SQLAlchemy for '{mask_url(url)}': {reason}."
        ) from None
    engine.dispose()


def merge_engine_options(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge engine option dicts, later ones winning; ``connect_args`` are merged too."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "connect_args" and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


def _tls_check(source: str, url: URL) -> Callable[[Any, Any], None]:
    """A ``connect`` listener that refuses a new MySQL connection that is not encrypted."""
    message = (
        f"{source} asks for TLS ('ssl=true') but the server at '{mask_url(url)}' accepted an"
        " unencrypted connection; enable TLS on the server, or set 'ssl=false'."
    )

    def check(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            row = cursor.fetchone()
        finally:
            cursor.close()
        if not row or not row[1]:
            # raising here makes the pool close the new connection
            raise ConfigurationError(message)

    return check


def _enable_sqlite_foreign_keys(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _log_connection_failure(context: sa.engine.ExceptionContext) -> None:
    """Log one clear line when the database cannot be reached or a connection is lost.

    A dead pooled connection found by ``pool_pre_ping`` is replaced silently, so only
    failures that reach the application are logged.
    """
    if context.is_pre_ping or context.engine is None:
        return
    where = mask_url(context.engine.url)
    reason = mask_text(str(context.original_exception))
    if context.connection is None:
        log.error("Cannot connect to the database '%s': %s", where, reason)
    elif context.is_disconnect:
        log.error(
            "Lost the connection to the database '%s' (%s); the pool discards its"
            " connections and reconnects on the next request.",
            where,
            reason,
        )


def install_listeners(engine: sa.Engine, *, require_tls: bool, source: str) -> None:
    """Attach the per-new-connection checks to ``engine``.

    They run once per new DBAPI connection, never per request: SQLite gets
    ``PRAGMA foreign_keys=ON``; MySQL with ``ssl=true`` is verified to be encrypted.
    Connection failures and lost connections are logged on the ``flask_entitydb`` logger.
    """
    sa.event.listen(engine, "handle_error", _log_connection_failure)
    backend = engine.url.get_backend_name()
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    elif backend in {"mysql", "mariadb"} and require_tls:
        sa.event.listen(engine, "connect", _tls_check(source, engine.url))
