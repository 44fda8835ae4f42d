"""Listeners on live engines: the per-new-connection checks (TLS really on, SQLite's
foreign keys, a read replica's connections read-only), the connect hook (a driver's
refusal of an argument's type in one line; pg8000's TLS errors), and one
clear log line with a hint when a connection fails or is lost."""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from flask_entitydb._settings.masking import mask
from flask_entitydb.errors import ConfigurationError

log = logging.getLogger("flask_entitydb")


# how each backend says a connection is encrypted: a query and the column of its one row
_TLS_QUERIES = {
    "mysql": ("SHOW SESSION STATUS LIKE 'Ssl_cipher'", 1),
    "postgresql": ("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", 0),
}


def _encrypted(dbapi_connection: Any, backend: str) -> bool:
    """Whether the new connection is encrypted, asked as ``backend`` answers it."""
    query, column = _TLS_QUERIES[backend]
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(query)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return bool(row and row[column])


def _tls_check(source: str, url: URL) -> Callable[[Any, Any], None]:
    """A ``connect`` listener that refuses a new connection that is not encrypted."""
    message = (
        f"{source} asks for TLS ('ssl=true') but the server at '{mask(url)}' accepted an"
        " unencrypted connection; enable TLS on the server, or set 'ssl=false'."
    )
    backend = "postgresql" if url.get_backend_name() == "postgresql" else "mysql"

    def check(dbapi_connection: Any, connection_record: Any) -> None:
        if not _encrypted(dbapi_connection, backend):
            # closed here: the pool drops the connection record without closing it
            dbapi_connection.close()
            raise ConfigurationError(message)

    return check


# how each backend makes a session read-only, and the query that says whether it is
_READ_ONLY = {
    "mysql": (
        "SET SESSION TRANSACTION READ ONLY",
        # MariaDB < 11.1 knows only tx_read_only, MySQL 8 only transaction_read_only
        "SHOW SESSION VARIABLES WHERE Variable_name IN ('tx_read_only', 'transaction_read_only')",
        1,
    ),
    "postgresql": (
        "SET SESSION default_transaction_read_only = on",
        "SHOW default_transaction_read_only",
        0,
    ),
}


def _run(dbapi_connection: Any, sql: str) -> Any:
    """Run ``sql`` on a new DBAPI connection and commit (a PostgreSQL ``SET`` made in a
    transaction that is rolled back would be undone); its first row."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        # every row: some drivers refuse to commit with rows left unread
        rows = cursor.fetchall() if cursor.description else []
        row = rows[0] if rows else None
    finally:
        cursor.close()
    dbapi_connection.commit()
    return row


def _read_only_session(source: str, url: URL) -> Callable[[Any, Any], None]:
    """A ``connect`` listener that makes each new connection of a read replica read-only
    at the server, and refuses the connection when the server did not take it."""
    backend = "postgresql" if url.get_backend_name() == "postgresql" else "mysql"
    set_sql, check_sql, column = _READ_ONLY[backend]
    message = (
        f"{source}: the read replica '{mask(url)}' did not make its session read-only"
        f" ({set_sql}); a replica connection must never write, so use a server that"
        " supports read-only transactions."
    )

    def make_read_only(dbapi_connection: Any, connection_record: Any) -> None:
        _run(dbapi_connection, set_sql)
        row = _run(dbapi_connection, check_sql)
        if not row or str(row[column]).lower() not in {"1", "on", "true"}:
            dbapi_connection.close()
            raise ConfigurationError(message)

    return make_read_only


def _enable_sqlite_foreign_keys(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


# the patterns of driver messages, compiled (and cached by re) on the first failure to
# connect: a start-up that connects never needs them
_CERTIFICATE_NAME = (
    r"does not match host name|hostname mismatch|ip address mismatch|doesn't match"
    r"|validation of ssl server certificate failed|certificate is not valid for"
)
_CERTIFICATE_CHAIN = (
    r"self[- ]signed certificate|unable to get local issuer|certificate verify failed"
    r"|unknown ca|certificate chain|root certificate file"
)
_NO_TLS_ON_SERVER = (
    r"server does not support (it|ssl)|ssl is required, but|server doesn't support ssl"
    r"|ssl connection is required|does not support ssl"
)
_UNKNOWN_DATABASE = r"unknown database|database \S+ does not exist|\(1049,"


def is_unknown_database(reason: str) -> bool:
    """Whether the driver message ``reason`` says the server runs but has no such database."""
    return re.search(_UNKNOWN_DATABASE, reason, re.IGNORECASE) is not None


# libpq refusing a value of the connection string (before any network traffic)
_BAD_OPTION_VALUE = r"invalid (integer|sslmode|\w+) value|bad value for|invalid connection option"


def connect_error_hint(reason: str, url: URL) -> str:
    """What to do about a failure to connect to ``url`` whose driver message is ``reason``."""
    if re.search(_NO_TLS_ON_SERVER, reason, re.IGNORECASE):
        return (
            "the server does not offer TLS: enable TLS on the server (or, on a trusted"
            " network, set 'ssl=false')"
        )
    if re.search(_CERTIFICATE_NAME, reason, re.IGNORECASE):
        return (
            f"the server's TLS certificate does not name the host '{url.host}': connect with"
            " a host name the certificate lists"
        )
    if re.search(_CERTIFICATE_CHAIN, reason, re.IGNORECASE):
        return (
            "the server's TLS certificate is not signed by a CA this machine trusts: give its"
            " CA with 'ssl_ca=/path/to/ca.pem' (or 'ssl=true&ssl_verify=false' to encrypt"
            " without verifying)"
        )
    if re.search(_UNKNOWN_DATABASE, reason, re.IGNORECASE):
        name = (url.database or "").split("#")[0]
        return (
            f"the database '{name}' does not exist on the server: create it first"
            f" (CREATE DATABASE {name}), then run 'flask db upgrade'"
        )
    if "access denied" in reason.lower() or "authentication failed" in reason.lower():
        return "check the user name and password"
    if re.search(_BAD_OPTION_VALUE, reason, re.IGNORECASE):
        return (
            "the driver refused the value of a connection option: fix it in the URL or in"
            " connect_args of the engine options"
        )
    return "check that the server is running and the connection string is right"


def _log_connection_failure(context: sa.engine.ExceptionContext) -> None:
    """Log one clear line when the database cannot be reached or a connection is lost.

    A dead pooled connection found by ``pool_pre_ping`` is replaced silently, so only
    failures that reach the application are logged.
    """
    if context.is_pre_ping or context.engine is None:
        return
    url = context.engine.url
    reason = mask(str(context.original_exception)).strip().split("\n")[0]
    if context.connection is None:
        log.error(
            "Cannot connect to the database '%s': %s; %s.",
            mask(url),
            reason,
            connect_error_hint(reason, url),
        )
    elif context.is_disconnect:
        log.error(
            "Lost the connection to the database '%s' (%s); the pool discards its"
            " connections and reconnects on the next request.",
            mask(url),
            reason,
        )


def _checked_connect(dialect: Any, source: str, given: frozenset[str]) -> Callable[..., Any]:
    """``dialect.connect`` (the driver's ``connect()``, called after any ``do_connect``
    listener of the app's own), with a one-line error naming the argument when the
    driver refuses one of its type or value (``TypeError``/``ValueError``: a number given
    as text, ...), which the start-up checks did not cover; ``given`` are the argument
    names the configuration set (``connect_args`` and the URL's query). pg8000 raises
    :class:`ssl.SSLError` itself when the certificate is refused: made the driver's
    ``InterfaceError``, so that SQLAlchemy reports it like any failed connect."""
    original = dialect.connect

    def driver_connect(cargs: Any, cparams: Any) -> Any:
        try:
            return original(*cargs, **cparams)
        except ssl.SSLError as error:
            if dialect.driver != "pg8000":
                raise
            raise dialect.dbapi.InterfaceError(str(error)) from error

    def accepts(cargs: Any, cparams: Any) -> bool:
        """Whether the driver takes these arguments' types and values (it may still
        fail to connect); a connection it makes is closed at once."""
        try:
            driver_connect(cargs, cparams).close()
        except (TypeError, ValueError):
            return False
        except Exception:  # a server or network error: the arguments themselves passed
            return True
        return True

    def connect(*cargs: Any, **cparams: Any) -> Any:
        try:
            return driver_connect(cargs, cparams)
        except (TypeError, ValueError) as error:
            set_here = sorted(given & set(cparams))
            culprits = [
                name
                for name in set_here
                if accepts(cargs, {k: v for k, v in cparams.items() if k != name})
            ]
            names = culprits or set_here
            which = ", ".join(f"'{name}'" for name in names) or "its arguments"
            driver = f"{dialect.name}+{dialect.driver}"
            reason = mask(str(error)).strip().split("\n")[0] or type(error).__name__
            raise ConfigurationError(
                f"The '{driver}' driver refused the connection argument{'s' * (len(names) > 1)}"
                f" {which} (from connect_args in the engine options or the URL of {source}):"
                f" {type(error).__name__}: {reason}; give {'it' if len(names) == 1 else 'them'}"
                " a value of the type the driver documents."
            ) from None

    return connect


def install_listeners(
    engine: sa.Engine,
    *,
    require_tls: bool,
    source: str,
    replica: bool = False,
    connect_args: Any = None,
) -> None:
    """Attach the per-new-connection checks to ``engine``.

    They run once per new DBAPI connection, never per request: SQLite gets
    ``PRAGMA foreign_keys=ON``; MySQL and PostgreSQL with ``ssl=true`` are verified to be
    encrypted (``Ssl_cipher``, ``pg_stat_ssl``); the connections of a read ``replica``
    are made read-only at the server (``SET SESSION TRANSACTION READ ONLY``,
    ``default_transaction_read_only``), and verified to be. Connection failures and lost
    connections are logged on the ``flask_entitydb`` logger, except a replica's: the
    router skips a failed replica with one WARNING line of its own, and the read runs on
    the primary (:mod:`flask_entitydb._engine.routing`).
    """
    if not replica:
        sa.event.listen(engine, "handle_error", _log_connection_failure)
    backend = engine.url.get_backend_name()
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    elif backend in {"mysql", "mariadb", "postgresql"} and require_tls:
        sa.event.listen(engine, "connect", _tls_check(source, engine.url))
    if replica and backend in {"mysql", "mariadb", "postgresql"}:
        sa.event.listen(engine, "connect", _read_only_session(source, engine.url))
    given = frozenset(engine.url.query) | frozenset(connect_args or ())
    # the connect step itself, so that an app's own do_connect listeners still run first
    setattr(engine.dialect, "connect", _checked_connect(engine.dialect, source, given))  # noqa: B010
