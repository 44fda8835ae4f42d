"""Turning ``DB_CONNECTION_STRING`` into a SQLAlchemy URL and engine options.

This is where the connection string format users already have keeps working, where
``ssl=true`` becomes real, verified TLS, and where each dialect gets the engine defaults
that keep long-running apps healthy.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from flask_entitydb._settings import drivers
from flask_entitydb._settings.drivers import TLSRequest, find_driver
from flask_entitydb._settings.masking import has_fragment, mask, mask_connection_string
from flask_entitydb.errors import ConfigurationError

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


def _has_stray_at(url: URL, text: str) -> bool:
    """Whether an ``@`` ended up outside the user-info: an unencoded ``@`` in the user name
    or password, followed (or not) by a ``/`` or ``?`` that cut the URL short.

    :param text: the URL as configured.
    """
    rest = text.partition("://")[2]
    if rest.count("@") >= 2:
        last = rest.rindex("@")
        query = rest.find("?")
        # a second '@' is only fine inside a query parameter's value (application_name=a@b)
        if query == -1 or query > last or "=" not in rest[query:last]:
            return True
    if url.host and "@" in url.host:
        return True
    if url.database and "@" in url.database and url.get_backend_name() != "sqlite":
        return True
    return any("@" in key for key in url.query)


def parse_url(raw: str | URL, source: str) -> URL:
    """Parse a connection string and check that its dialect and driver are usable.

    :param raw: the connection string, as configured.
    :param source: where it came from, named in error messages.
    :raises ConfigurationError: malformed URL, unknown dialect or missing driver package.
    """
    if isinstance(raw, URL):
        url = raw
        text = raw.render_as_string(hide_password=False)
    else:
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigurationError(
                f"{source} is empty or not a string ({type(raw).__name__}); set it to a URL"
                " such as 'mysql+mysqldb://user:password@host:3306/name'."
            )
        text = raw.strip()
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            raise ConfigurationError(
                f"{source} is not a valid database URL: '{mask_connection_string(text)}'; use"
                " the form 'dialect+driver://user:password@host:port/database'."
            ) from None
    if _has_stray_at(url, text):
        raise ConfigurationError(
            f"{source} has an '@' in its user name or password in"
            f" '{mask_connection_string(text)}'; write an '@' inside the user name or password"
            " as '%40' (urllib.parse.quote_plus does it)."
        )
    if url.get_backend_name() != "sqlite" and has_fragment(url):
        raise ConfigurationError(
            f"{source} has a '#' in its database name or a parameter in '{mask(url)}'; a"
            " connection string has no '#fragment': write a '#' inside a value as '%23'."
        )
    repeated = sorted(
        key
        for key, value in url.query.items()
        if not isinstance(value, str)
        and not (url.get_backend_name() == "postgresql" and key in {"host", "port"})
    )
    if repeated:
        raise ConfigurationError(
            f"{source} gives the parameter '{repeated[0]}' more than once in '{mask(url)}';"
            " give each parameter once."
        )
    if url.port is not None and not 0 < url.port < 65536:
        raise ConfigurationError(
            f"{source} has port {url.port} in '{mask(url)}'; use a port from 1 to 65535."
        )
    try:
        dialect_cls = url.get_dialect()
    except NoSuchModuleError:
        raise ConfigurationError(
            f"{source} names an unknown database dialect '{url.drivername}' in"
            f" '{mask(url)}'; use 'mysql+mysqldb', 'postgresql+psycopg' or 'sqlite'."
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
    if url.get_backend_name() in {"mysql", "mariadb", "postgresql"} and find_driver(url) is None:
        raise ConfigurationError(
            f"{source} uses the '{url.drivername}' driver, which flask-entitydb is not tested"
            f" with; use one of {drivers.TESTED}."
        )
    return url


def _bool_word(value: str, name: str, source: str, url: URL) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(
        f"{source} has '{name}={value}' in '{mask(url)}'; use '{name}=true' or '{name}=false'."
    )


def _single(url: URL, key: str) -> str | None:
    value = url.query.get(key)
    if value is None or isinstance(value, str):
        return value
    return value[-1]


_MYSQLDB_SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
_MYSQL_TLS_FILES = ("ssl_ca", "ssl_capath", "ssl_cert", "ssl_key", "ssl_cipher")
# PostgreSQL sslmode values that do not guarantee TLS
_PG_NO_TLS_MODES = frozenset({"disable", "allow", "prefer"})
# what each meaning of ssl= allows as the driver's own mode parameter
_MYSQL_MODES_FOR = {
    (True, True): {"VERIFY_CA", "VERIFY_IDENTITY"},
    (True, False): {"REQUIRED"},
    (False, False): {"DISABLED"},
}
_PG_MODES_FOR = {
    (True, True): {"verify-ca", "verify-full"},
    (True, False): {"require"},
    (False, False): {"disable"},
}


def _ssl_words(tls: TLSRequest) -> str:
    if not tls.encrypt:
        return "'ssl=false'"
    return "'ssl=true'" if tls.verify else "'ssl=true&ssl_verify=false'"


def _tls_request(url: URL, source: str) -> tuple[URL, TLSRequest | None]:
    """Read ``ssl=`` and ``ssl_verify=`` (removed from the URL) into a :class:`TLSRequest`."""
    ssl_value = _single(url, "ssl")
    verify_value = _single(url, "ssl_verify")
    given = url
    url = url.difference_update_query(["ssl", "ssl_verify"])
    if ssl_value is None:
        if verify_value is not None:
            raise ConfigurationError(
                f"{source} has 'ssl_verify' without 'ssl=true' in '{mask(url)}'; add 'ssl=true'"
                " (TLS is then required)."
            )
        return url, None
    encrypt = _bool_word(ssl_value, "ssl", source, given)
    verify = encrypt
    if verify_value is not None:
        verify = _bool_word(verify_value, "ssl_verify", source, given)
        if not encrypt:
            raise ConfigurationError(
                f"{source} has 'ssl_verify' with 'ssl=false' in '{mask(url)}'; remove 'ssl_verify'."
            )
    backend = url.get_backend_name()
    if backend == "postgresql":
        ca = _single(url, "ssl_ca") or _single(url, "sslrootcert")
        cert, key, capath = _single(url, "sslcert"), _single(url, "sslkey"), None
    else:
        ca, capath = _single(url, "ssl_ca"), _single(url, "ssl_capath")
        cert, key = _single(url, "ssl_cert"), _single(url, "ssl_key")
    tls = TLSRequest(encrypt=encrypt, verify=verify, ca=ca, capath=capath, cert=cert, key=key)
    if encrypt and not verify and (ca or capath):
        raise ConfigurationError(
            f"{source} has both 'ssl_verify=false' and a CA in '{mask(url)}'; remove"
            " 'ssl_verify=false' (the certificate is then verified against that CA)."
        )
    return url, tls


def _check_tls_contradictions(url: URL, tls: TLSRequest | None, source: str) -> None:
    """Refuse ``ssl=`` combined with driver TLS parameters in the URL that say otherwise.

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
                f"{source} has 'ssl_mode={mode}' in '{mask(url)}'; use one of"
                f" {', '.join(repr(m) for m in _MYSQLDB_SSL_MODES)} (upper case)."
            )
        if tls is None:
            return
        given = [key for key in _MYSQL_TLS_FILES if key in url.query]
        if not tls.encrypt and given:
            raise ConfigurationError(
                f"{source} sets both 'ssl=false' and '{given[0]}' in '{mask(url)}', which"
                " turns TLS on; remove one of them."
            )
        allowed = _MYSQL_MODES_FOR[(tls.encrypt, tls.verify)]
        if mode is not None and mode.upper() not in allowed:
            raise ConfigurationError(
                f"{source} sets both {_ssl_words(tls)} and 'ssl_mode={mode}' in"
                f" '{mask(url)}'; remove 'ssl_mode'{_VERIFY_HINT if tls.verify else ''}."
            )
    elif backend == "postgresql":
        mode = _single(url, "sslmode")
        if tls is None or mode is None:
            return
        if mode.lower() not in _PG_MODES_FOR[(tls.encrypt, tls.verify)]:
            raise ConfigurationError(
                f"{source} sets both {_ssl_words(tls)} and 'sslmode={mode}' in"
                f" '{mask(url)}'; remove 'sslmode'{_VERIFY_HINT if tls.verify else ''}."
            )


_VERIFY_HINT = (
    " ('ssl=true' verifies the server's certificate; 'ssl=true&ssl_verify=false' encrypts"
    " without verifying)"
)


def _postgresql_tls(url: URL, tls: TLSRequest, source: str) -> tuple[URL, dict[str, Any]]:
    """The URL and ``connect_args`` that make a PostgreSQL driver do what ``tls`` asks."""
    driver = url.get_driver_name()
    url = url.difference_update_query(["ssl_ca"])
    if driver == "pg8000":
        url = url.difference_update_query(["sslrootcert", "sslcert", "sslkey", "sslmode"])
        # pg8000 reads None as "try TLS, unverified" and False as "no TLS"
        return url, {"ssl_context": drivers.ssl_context(tls) if tls.encrypt else False}
    if not tls.encrypt:
        return url.update_query_dict({"sslmode": "disable"}), {}
    if not tls.verify:
        return url.update_query_dict({"sslmode": "require"}), {}
    query = {"sslmode": _single(url, "sslmode") or "verify-full"}
    if tls.ca:
        query["sslrootcert"] = tls.ca
    elif drivers.libpq_version(driver) >= 160000:
        query["sslrootcert"] = "system"
    else:
        bundle = drivers.system_ca_file()
        if bundle is None:
            raise ConfigurationError(
                f"{source} asks for verified TLS ('ssl=true') in '{mask(url)}', but this"
                " machine has no system CA bundle; give the server's CA with 'ssl_ca=/path',"
                " or install ca-certificates."
            )
        query["sslrootcert"] = bundle
    return url.update_query_dict(query), {}


def prepare_url(url: URL, source: str) -> tuple[URL, dict[str, Any], TLSRequest | None]:
    """Apply flask-entitydb's meaning of ``ssl=`` and the dialect's defaults.

    :returns: the URL to hand to SQLAlchemy, engine option defaults for its dialect, and
        what ``ssl=`` asked for (``None`` without ``ssl=``).
    """
    backend = url.get_backend_name()
    url, tls = _tls_request(url, source)
    _check_tls_contradictions(url, tls, source)
    defaults: dict[str, Any] = {}
    connect_args: dict[str, Any] = {}
    driver = find_driver(url)

    if backend == "sqlite":
        if tls is not None:
            raise ConfigurationError(
                f"{source} sets 'ssl' for SQLite in '{mask(url)}'; SQLite is a local"
                " file and has no TLS, remove the 'ssl' parameter."
            )
    elif backend in {"mysql", "mariadb"}:
        assert driver is not None  # parse_url refused the others
        defaults.update(pool_recycle=MYSQL_POOL_RECYCLE)
        if driver.takes_charset and "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        if tls is not None:
            connect_args.update(drivers.mysql_tls_args(driver.name, tls))
    elif backend == "postgresql":
        if tls is not None:
            url, args = _postgresql_tls(url, tls, source)
            connect_args.update(args)
    elif tls is not None:
        raise ConfigurationError(
            f"{source} sets 'ssl' in '{mask(url)}', which flask-entitydb only understands"
            f" for MySQL, MariaDB and PostgreSQL; use the '{backend}' driver's own TLS options."
        )
    if (
        driver is not None
        and driver.localhost_is_socket
        and url.host == "localhost"
        and url.port
        and "unix_socket" not in url.query
    ):
        # the driver would take 'localhost' for the Unix socket and ignore the port
        connect_args["host"] = "127.0.0.1"
    if tls is not None and tls.encrypt and not tls.verify:
        log.warning(
            "%s has 'ssl_verify=false': connections to '%s' are encrypted but the server's"
            " certificate is not verified, so a machine in between can read them.",
            source,
            mask(url),
        )
    if connect_args:
        defaults["connect_args"] = connect_args
    return url, defaults, tls


def check_tls_options(
    url: URL, tls: TLSRequest | None, layer: Mapping[str, Any], blame: str, source: str
) -> None:
    """Refuse ``connect_args`` in ``layer`` that choose the TLS mode when the URL has
    ``ssl=``: they would silently win over it (SQLAlchemy passes them last)."""
    if tls is None:
        return
    connect_args = layer.get("connect_args") or {}
    keys = drivers.MYSQL_TLS_MODE_KEYS | drivers.PG_TLS_MODE_KEYS
    driver = url.get_driver_name()
    if driver in {"pymysql", "mariadbconnector"}:
        keys = keys | {"ssl"}
    for key in connect_args:
        if key in keys:
            raise ConfigurationError(
                f"{blame} sets 'connect_args' '{key}' while {source} has 'ssl=' in"
                f" '{mask(url)}'; remove '{key}' ('ssl=true' verifies the server,"
                " 'ssl=true&ssl_verify=false' encrypts without verifying, 'ssl=false' turns TLS"
                " off)."
            )


def _not_finite(value: Any) -> bool:
    """Whether ``value`` is an infinite or NaN number, or a string of one (config files
    give strings, which SQLAlchemy turns into numbers)."""
    if isinstance(value, str) and value.strip().lower().lstrip("+-") in {"inf", "infinity", "nan"}:
        return True
    return isinstance(value, float) and not math.isfinite(value)


def check_option_types(options: Mapping[Any, Any], blame: str) -> None:
    """Check that ``options`` can be merged and passed as ``create_engine(**options)``.

    :raises ConfigurationError: a key is not a string, a number is infinite or NaN, or
        ``connect_args`` is not a dict.
    """
    for key, value in options.items():
        if not isinstance(key, str):
            raise ConfigurationError(
                f"{blame} has the key {key!r}, which is not a string; use create_engine()"
                " keyword names such as 'pool_size'."
            )
        if _not_finite(value):
            raise ConfigurationError(
                f"{blame} has '{key}': {value!r}; use a finite number of seconds or items"
                " (for no pool_timeout, leave it out: the default is 30 seconds)."
            )
    connect_args = options.get("connect_args", {})
    if not isinstance(connect_args, Mapping) or not all(
        isinstance(key, str) for key in connect_args
    ):
        raise ConfigurationError(
            f"{blame} has a 'connect_args' that is not a dict with string keys"
            f" ({type(connect_args).__name__}); use a dict of driver connect() arguments."
        )


def _create_unconnected(url: URL, options: Mapping[str, Any]) -> sa.Engine:
    # the way Flask-SQLAlchemy creates it, string values coerced alike
    return sa.engine_from_config({**options, "url": url}, prefix="")


def check_engine(url: URL, options: Mapping[str, Any], blame: str) -> None:
    """Create, but never connect, an engine from ``url`` and ``options``, so that URL
    parameters and engine options the dialect or pool refuse fail now, not on first use.

    :param blame: the setting named as the cause in the message.
    :raises ConfigurationError: :func:`sqlalchemy.create_engine` refused them.
    """
    try:
        engine = _create_unconnected(url, options)
    except (TypeError, ValueError, AttributeError, ArgumentError) as exc:
        reason = mask(str(exc)).strip().split("\n")[0] or type(exc).__name__
        reason = reason.split(", using configuration")[0].rstrip(". ")
        raise ConfigurationError(
            f"{blame} is not accepted by SQLAlchemy for '{mask(url)}': {reason}."
        ) from None
    engine.dispose()


def check_connect_keywords(
    url: URL, options: Mapping[str, Any], source: str, blame: Mapping[str, str]
) -> None:
    """Refuse, at start-up, keywords the driver's ``connect()`` does not take (a typo such
    as ``?SSL=true`` or ``?bogus=1``, ``charset`` for mariadb, ``ssl_mode`` for pymysql),
    which would otherwise be a ``TypeError`` at the first connection.

    :param blame: for each ``connect_args`` key, the setting it came from.
    """
    driver = find_driver(url)
    if driver is None:
        return
    known = driver.keywords()
    engine = _create_unconnected(url, options)
    try:
        _, params = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    given = {**params, **(options.get("connect_args") or {})}
    for key in given:
        takes = drivers.psycopg2_knows(key) if known is None else key in known
        if takes:
            continue
        where = blame.get(key) or (f"{source} in '{mask(url)}'")
        choices = [*sorted(known or ()), "ssl"]
        close = difflib.get_close_matches(key.lower(), choices, n=1, cutoff=0.75)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        if key.lower().startswith("ssl"):
            hint += "; for TLS use 'ssl=true' (and 'ssl_ca=') in the URL"
        raise ConfigurationError(
            f"{where} passes '{key}' to the '{url.drivername}' driver, which does not take"
            f" it{hint}; remove it or use one of the driver's connect() parameters."
        )


def _mysql_tls_check(dbapi_connection: Any) -> bool:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cursor.fetchone()
    finally:
        cursor.close()
    return bool(row and row[1])


def _postgresql_tls_check(dbapi_connection: Any) -> bool:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        row = cursor.fetchone()
    finally:
        cursor.close()
    return bool(row and row[0])


def _tls_check(source: str, url: URL) -> Callable[[Any, Any], None]:
    """A ``connect`` listener that refuses a new connection that is not encrypted."""
    message = (
        f"{source} asks for TLS ('ssl=true') but the server at '{mask(url)}' accepted an"
        " unencrypted connection; enable TLS on the server, or set 'ssl=false'."
    )
    encrypted = (
        _postgresql_tls_check if url.get_backend_name() == "postgresql" else _mysql_tls_check
    )

    def check(dbapi_connection: Any, connection_record: Any) -> None:
        if not encrypted(dbapi_connection):
            # closed here: the pool drops the connection record without closing it
            dbapi_connection.close()
            raise ConfigurationError(message)

    return check


def _enable_sqlite_foreign_keys(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


_CERTIFICATE_NAME = re.compile(
    r"does not match host name|hostname mismatch|ip address mismatch|doesn't match"
    r"|validation of ssl server certificate failed|certificate is not valid for",
    re.IGNORECASE,
)
_CERTIFICATE_CHAIN = re.compile(
    r"self[- ]signed certificate|unable to get local issuer|certificate verify failed"
    r"|unknown ca|certificate chain|root certificate file",
    re.IGNORECASE,
)
_NO_TLS_ON_SERVER = re.compile(
    r"server does not support (it|ssl)|ssl is required, but|server doesn't support ssl"
    r"|ssl connection is required|does not support ssl",
    re.IGNORECASE,
)
_UNKNOWN_DATABASE = re.compile(
    r"unknown database|database \S+ does not exist|\(1049,", re.IGNORECASE
)


def connect_error_hint(reason: str, url: URL) -> str:
    """What to do about a failure to connect to ``url`` whose driver message is ``reason``."""
    if _NO_TLS_ON_SERVER.search(reason):
        return (
            "the server does not offer TLS: enable TLS on the server (or, on a trusted"
            " network, set 'ssl=false')"
        )
    if _CERTIFICATE_NAME.search(reason):
        return (
            f"the server's TLS certificate does not name the host '{url.host}': connect with"
            " a host name the certificate lists"
        )
    if _CERTIFICATE_CHAIN.search(reason):
        return (
            "the server's TLS certificate is not signed by a CA this machine trusts: give its"
            " CA with 'ssl_ca=/path/to/ca.pem' (or 'ssl=true&ssl_verify=false' to encrypt"
            " without verifying)"
        )
    if _UNKNOWN_DATABASE.search(reason):
        name = (url.database or "").split("#")[0]
        return (
            f"the database '{name}' does not exist on the server: create it first"
            f" (CREATE DATABASE {name}), then run 'flask db upgrade'"
        )
    if "access denied" in reason.lower() or "authentication failed" in reason.lower():
        return "check the user name and password"
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


def _pg8000_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
    """pg8000 raises :class:`ssl.SSLError` itself when the certificate is refused; make it
    the driver's ``InterfaceError``, so that SQLAlchemy reports it like any failed connect."""
    try:
        return dialect.dbapi.connect(*cargs, **cparams)
    except ssl.SSLError as error:
        raise dialect.dbapi.InterfaceError(str(error)) from error


def install_listeners(engine: sa.Engine, *, require_tls: bool, source: str) -> None:
    """Attach the per-new-connection checks to ``engine``.

    They run once per new DBAPI connection, never per request: SQLite gets
    ``PRAGMA foreign_keys=ON``; MySQL and PostgreSQL with ``ssl=true`` are verified to be
    encrypted (``Ssl_cipher``, ``pg_stat_ssl``). Connection failures and lost connections
    are logged on the ``flask_entitydb`` logger.
    """
    sa.event.listen(engine, "handle_error", _log_connection_failure)
    backend = engine.url.get_backend_name()
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    elif backend in {"mysql", "mariadb", "postgresql"} and require_tls:
        sa.event.listen(engine, "connect", _tls_check(source, engine.url))
    if engine.url.get_driver_name() == "pg8000":
        sa.event.listen(engine, "do_connect", _pg8000_connect)


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
