"""MySQL option files (``read_default_file=``, ``default_file=``, ``option_files=``) must
not weaken ``ssl=true``: the driver reads them after flask-entitydb chose verified TLS, so
a ``[client] ssl-verify-server-cert=0`` there would connect to any server unverified.

With ``ssl=true``, every option file the driver would read is checked at start-up, and a
setting in it that turns TLS or its verification off is refused with its file and line.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy.engine import URL

from flask_entitydb._settings.drivers import TLSRequest
from flask_entitydb._settings.masking import mask
from flask_entitydb.errors import ConfigurationError

__all__ = ["check_option_files"]

# the connect() keywords naming option files, and those naming only a group (the driver
# then reads the default files)
_FILE_KEYS = ("read_default_file", "default_file", "option_files")
_GROUP_KEYS = ("read_default_group", "default_group", "option_groups")
_DEFAULT_FILES = ("/etc/my.cnf", "/etc/mysql/my.cnf", "~/.my.cnf")
_OFF = {"0", "false", "off", "no", "disabled"}
# option -> whether a value weakens TLS (None: the option alone does)
_WEAKENING: dict[str, frozenset[str] | None] = {
    "skip-ssl": None,
    "disable-ssl": None,
    "skip-ssl-verify-server-cert": None,
    "disable-ssl-verify-server-cert": None,
    "ssl": frozenset(_OFF),
    "ssl-verify-server-cert": frozenset(_OFF),
    "ssl-mode": frozenset({"disabled", "preferred", "required"}),
}


def _names(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)] if value else []


def _lines(path: str, depth: int = 0) -> Iterator[tuple[str, int, str]]:
    """``(file, line number, line)`` of an option file and of the files it includes."""
    with open(path, encoding="utf-8", errors="replace") as file:
        lines = file.read().splitlines()
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if depth < 5 and line.startswith("!include "):
            yield from _lines(os.path.join(os.path.dirname(path), line[9:].strip()), depth + 1)
        elif depth < 5 and line.startswith("!includedir "):
            folder = os.path.join(os.path.dirname(path), line[12:].strip())
            for included in sorted(glob.glob(os.path.join(folder, "*.cnf"))):
                yield from _lines(included, depth + 1)
        else:
            yield path, number, line


def _weakening(path: str) -> tuple[str, int, str] | None:
    """The first setting in ``path`` (or a file it includes) that weakens TLS."""
    for where, number, line in _lines(path):
        if not line or line[0] in "#;[":
            continue
        name, _, value = line.partition("=")
        name = name.strip().lower().replace("_", "-")
        name = name.removeprefix("loose-")
        if name not in _WEAKENING:
            continue
        values = _WEAKENING[name]
        if values is None or value.strip().strip("'\"").lower() in values:
            return where, number, line
    return None


def check_option_files(
    url: URL, tls: TLSRequest | None, connect_args: Mapping[str, Any], source: str
) -> None:
    """Refuse an option file that turns off TLS or its verification when ``ssl=true``
    asks for verified TLS (MySQL and MariaDB drivers).

    :raises ConfigurationError: such a setting, naming its file and line; or an option
        file that cannot be read to check it.
    """
    if tls is None or not tls.encrypt or url.get_backend_name() not in {"mysql", "mariadb"}:
        return
    given = {**url.query, **connect_args}
    files = [name for key in _FILE_KEYS for name in _names(given.get(key))]
    if not files and any(given.get(key) for key in _GROUP_KEYS):
        files = [path for path in map(os.path.expanduser, _DEFAULT_FILES) if os.path.exists(path)]
    for name in files:
        path = os.path.expanduser(name)
        try:
            found = _weakening(path)
        except OSError as error:
            raise ConfigurationError(
                f"{source} asks for verified TLS ('ssl=true') in '{mask(url)}' and names the"
                f" option file '{name}', which cannot be read to check that it keeps TLS on"
                f" ({error.strerror}); fix the path or remove it."
            ) from None
        if found is not None:
            where, number, line = found
            raise ConfigurationError(
                f"{source} asks for verified TLS ('ssl=true') in '{mask(url)}', but its option"
                f" file '{where}' line {number} ('{line}') would turn TLS or its certificate"
                " check off; remove that line (or use 'ssl=true&ssl_verify=false' to encrypt"
                " without verifying, on purpose)."
            )
