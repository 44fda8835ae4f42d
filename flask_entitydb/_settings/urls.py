"""Turning ``DB_CONNECTION_STRING`` into a SQLAlchemy URL and engine option defaults.

This is where the connection string format users already have keeps working, where
``ssl=true`` becomes real, verified TLS (:mod:`flask_entitydb._settings.tls`), and where
each dialect gets the engine defaults that keep long-running apps healthy.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from flask_entitydb._settings import drivers
from flask_entitydb._settings.drivers import TLSRequest, find_driver
from flask_entitydb._settings.masking import (
    describe_unparsed,
    has_fragment,
    mask,
    mask_connection_string,
)
from flask_entitydb._settings.options import MYSQL_POOL_RECYCLE
from flask_entitydb._settings.tls import check_tls_contradictions, postgresql_tls, tls_request
from flask_entitydb.errors import ConfigurationError

log = logging.getLogger("flask_entitydb")

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
            fix = (
                "remove the quotes around the value"
                if text[:1] in {"'", '"'}
                else "use the form 'dialect+driver://user:password@host:port/database'"
            )
            raise ConfigurationError(
                f"{source} is not a valid database URL ({describe_unparsed(text)}); {fix}."
            ) from None
    if "?" in text and text.endswith(("?", "&", "=")):
        raise ConfigurationError(
            f"{source} ends with '{text[-1]}' in '{mask(url)}': it looks cut short, as a shell"
            " cuts an unquoted value at its first '&'; quote the whole value where it is set"
            f" (in a shell: export NAME='...'), or remove the trailing '{text[-1]}'."
        )
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


def prepare_url(url: URL, source: str) -> tuple[URL, dict[str, Any], TLSRequest | None]:
    """Apply flask-entitydb's meaning of ``ssl=`` and the dialect's defaults.

    :returns: the URL to hand to SQLAlchemy, engine option defaults for its dialect, and
        what ``ssl=`` asked for (``None`` without ``ssl=``).
    """
    backend = url.get_backend_name()
    url, tls = tls_request(url, source)
    check_tls_contradictions(url, tls, source)
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
        if driver.name == "mariadbconnector" and backend == "mysql":
            # the driver refuses 'charset', which Flask-SQLAlchemy adds to every 'mysql...'
            # URL; 'mariadb+mariadbconnector' is the same driver for MariaDB servers
            url = url.set(drivername="mariadb+mariadbconnector")
        if driver.takes_charset and "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        if tls is not None:
            connect_args.update(drivers.mysql_tls_args(driver.name, tls))
    elif backend == "postgresql":
        if tls is not None:
            url, args = postgresql_tls(url, tls, source)
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
