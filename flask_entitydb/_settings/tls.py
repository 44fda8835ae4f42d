"""The TLS words of a connection string: ``ssl=`` and ``ssl_verify=`` read into a
:class:`~flask_entitydb._settings.drivers.TLSRequest`, the driver TLS parameters and
engine options that would contradict them refused, and PostgreSQL's ``sslmode`` set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import URL

from flask_entitydb._settings import drivers
from flask_entitydb._settings.drivers import TLSRequest
from flask_entitydb._settings.masking import mask
from flask_entitydb.errors import ConfigurationError

TRUE_WORDS = frozenset({"true", "1", "yes", "on", "required", "require"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", "disabled", "disable"})


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


def tls_request(url: URL, source: str) -> tuple[URL, TLSRequest | None]:
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


def check_tls_contradictions(url: URL, tls: TLSRequest | None, source: str) -> None:
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


def postgresql_tls(url: URL, tls: TLSRequest, source: str) -> tuple[URL, dict[str, Any]]:
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
