"""What flask-entitydb knows about each MySQL/MariaDB and PostgreSQL driver.

Each driver spells TLS, its connect() keywords and ``localhost`` differently; this module
turns flask-entitydb's one meaning of ``ssl=`` into each driver's arguments and lists the
keywords each driver's ``connect()`` takes, so that a typo fails at start-up.
"""

from __future__ import annotations

import inspect
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL

MYSQL_TLS_MODE_KEYS = frozenset(
    {"ssl_mode", "ssl_disabled", "ssl_verify_cert", "ssl_verify_identity", "ssl_check_hostname"}
)
"""MySQL driver keywords that choose whether and how TLS is used."""
PG_TLS_MODE_KEYS = frozenset({"sslmode", "ssl_context"})
"""PostgreSQL driver keywords that choose whether and how TLS is used."""


@dataclass(frozen=True)
class TLSRequest:
    """What ``ssl=`` (with ``ssl_verify=`` and ``ssl_ca=``) asks for."""

    encrypt: bool
    verify: bool
    ca: str | None = None
    capath: str | None = None
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Driver:
    """One SQLAlchemy dialect+driver flask-entitydb is tested with."""

    backend: str
    name: str
    takes_charset: bool = False
    localhost_is_socket: bool = False
    """Whether the driver reads host ``localhost`` as "the Unix socket"."""
    keywords: Callable[[], frozenset[str] | None] = lambda: None


def _signature_keywords(function: Callable[..., Any]) -> frozenset[str]:
    return frozenset(
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ) - {"self"}


def _mysqldb_keywords() -> frozenset[str]:
    # MySQLdb.connections.Connection.__init__ and the _mysql.connection keyword list
    return frozenset(
        {
            "host", "user", "password", "passwd", "database", "db", "port", "unix_socket",
            "conv", "connect_timeout", "compress", "named_pipe", "init_command",
            "read_default_file", "read_default_group", "client_flag", "ssl", "ssl_mode",
            "local_infile", "read_timeout", "write_timeout", "charset", "auth_plugin",
            "server_public_key_path", "local_infile_dir", "cursorclass", "collation",
            "use_unicode", "sql_mode", "binary_prefix", "executemany_fallback",
            "multi_statements", "autocommit",
        }
    )  # fmt: skip


def _pymysql_keywords() -> frozenset[str]:
    import pymysql

    return _signature_keywords(pymysql.connections.Connection.__init__)


def _mysqlconnector_keywords() -> frozenset[str]:
    from mysql.connector import constants

    return (
        frozenset(constants.DEFAULT_CONFIGURATION)
        | frozenset(constants.CNX_POOL_ARGS)
        | {
            "option_files",
            "option_groups",
            "failover",
            "client_flags",
            "converter_class",
            "use_pure",
            "ssl_disabled",
        }
    )


def _mariadb_keywords() -> frozenset[str]:
    # mariadb_connection.c's dsn_keys and mariadb.connections.Connection.__init__
    return frozenset(
        {
            "dsn", "host", "user", "password", "database", "port", "unix_socket",
            "connect_timeout", "read_timeout", "write_timeout", "local_infile", "compress",
            "init_command", "default_file", "default_group", "ssl_key", "ssl_ca", "ssl_cert",
            "ssl_crl", "ssl_cipher", "ssl_capath", "ssl_crlpath", "ssl_verify_cert", "ssl",
            "client_flag", "pool_name", "pool_size", "pool_reset_connection", "plugin_dir",
            "username", "db", "passwd", "status_callback", "tls_version", "tls_fp",
            "tls_fp_list", "autocommit", "reconnect", "converter", "prepared", "binary",
            "cursor_type", "buffered",
        }
    )  # fmt: skip


def _psycopg_keywords() -> frozenset[str]:
    import psycopg

    libpq = frozenset(d.keyword.decode() for d in psycopg.pq.Conninfo.get_defaults())
    return libpq | {"autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory"}


def _psycopg2_keywords() -> frozenset[str] | None:
    # psycopg2 has no list; its libpq is asked about each keyword in check_keywords
    return None


def _pg8000_keywords() -> frozenset[str]:
    import pg8000

    return _signature_keywords(pg8000.connect)


DRIVERS: dict[tuple[str, str], Driver] = {
    ("mysql", "mysqldb"): Driver(
        "mysql",
        "mysqldb",
        takes_charset=True,
        localhost_is_socket=True,
        keywords=_mysqldb_keywords,
    ),
    ("mysql", "pymysql"): Driver(
        "mysql", "pymysql", takes_charset=True, keywords=_pymysql_keywords
    ),
    ("mysql", "mysqlconnector"): Driver(
        "mysql", "mysqlconnector", takes_charset=True, keywords=_mysqlconnector_keywords
    ),
    ("mysql", "mariadbconnector"): Driver(
        "mysql", "mariadbconnector", localhost_is_socket=True, keywords=_mariadb_keywords
    ),
    ("postgresql", "psycopg"): Driver("postgresql", "psycopg", keywords=_psycopg_keywords),
    ("postgresql", "psycopg2"): Driver("postgresql", "psycopg2", keywords=_psycopg2_keywords),
    ("postgresql", "pg8000"): Driver("postgresql", "pg8000", keywords=_pg8000_keywords),
}
"""The drivers flask-entitydb is tested with, by (backend, driver); ``mariadb`` URLs use
the ``mysql`` entries."""

TESTED = ", ".join(
    f"'{'mariadb' if d.name == 'mariadbconnector' else d.backend}+{d.name}'"
    for d in DRIVERS.values()
)


def find_driver(url: URL) -> Driver | None:
    """The :class:`Driver` of ``url``, or ``None`` for a driver flask-entitydb does not know."""
    backend = url.get_backend_name()
    backend = "mysql" if backend == "mariadb" else backend
    return DRIVERS.get((backend, url.get_driver_name()))


def libpq_version(driver: str) -> int:
    """The version number of the libpq the ``psycopg``/``psycopg2`` driver uses (160000 for
    libpq 16)."""
    if driver == "psycopg":
        import psycopg

        return int(psycopg.pq.version())
    import psycopg2.extensions

    return int(psycopg2.extensions.libpq_version())


def psycopg2_knows(keyword: str) -> bool:
    """Whether psycopg2's libpq accepts ``keyword`` as a connection parameter."""
    import psycopg2.extensions

    try:
        psycopg2.extensions.parse_dsn(f"{keyword}=x")
    except psycopg2.ProgrammingError:
        return keyword in {"connection_factory", "cursor_factory", "async", "async_"}
    return True


def system_ca_file() -> str | None:
    """The system's CA bundle file (OpenSSL's default, or ``SSL_CERT_FILE``), if any."""
    paths = ssl.get_default_verify_paths()
    return paths.cafile


def ssl_context(tls: TLSRequest) -> ssl.SSLContext:
    """An :class:`ssl.SSLContext` for drivers that take one (pymysql, pg8000): the system
    CAs or ``tls.ca``, host name checked, unless ``tls.verify`` is false."""
    context = ssl.create_default_context(cafile=tls.ca, capath=tls.capath)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert:
        context.load_cert_chain(tls.cert, tls.key)
    return context


def mysql_tls_args(driver: str, tls: TLSRequest) -> dict[str, Any]:
    """``connect_args`` that make the MySQL driver ``driver`` do what ``tls`` asks.

    CA, certificate and key files stay in the URL (SQLAlchemy hands them to mysqldb,
    mysql-connector and mariadb), except for pymysql, which gets them in its context.
    """
    if not tls.encrypt:
        if driver == "mysqldb":
            return {"ssl_mode": "DISABLED"}
        if driver in {"pymysql", "mysqlconnector"}:
            return {"ssl_disabled": True}
        return {}  # mariadb: plaintext unless asked
    if driver == "mysqldb":
        return {"ssl_mode": "VERIFY_IDENTITY" if tls.verify else "REQUIRED"}
    if driver == "pymysql":
        return {"ssl": ssl_context(tls)}
    if driver == "mysqlconnector":
        return {"ssl_verify_cert": tls.verify, "ssl_verify_identity": tls.verify}
    return {"ssl": True, "ssl_verify_cert": tls.verify}  # mariadbconnector
