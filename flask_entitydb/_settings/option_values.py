"""The values of the engine options flask-entitydb passes on to
:func:`sqlalchemy.create_engine`, checked at start-up: a value SQLAlchemy, the pool or
the driver would refuse only at the first connection (or at a checkout hours later) is
one line naming the option."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import URL

from flask_entitydb.errors import ConfigurationError

__all__ = ["check_option_values"]

_TRUE_FALSE = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def _is_whole(value: Any, minimum: int, *, text: bool) -> bool:
    """Whether ``value`` is a whole number >= ``minimum`` (or, when SQLAlchemy coerces
    config strings for the option, a string of one)."""
    if isinstance(value, str) and text:
        try:
            value = int(value.strip())
        except ValueError:
            return False
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _whole(minimum: int, wanted: str, *, text: bool = True) -> Callable[[Any], str | None]:
    return lambda value: None if _is_whole(value, minimum, text=text) else wanted


def _seconds(minimum: float, wanted: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, str):
            # SQLAlchemy turns a config string into a whole number of seconds
            return None if _is_whole(value, int(minimum), text=True) else wanted
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return wanted
        return None if math.isfinite(value) and value >= minimum else wanted

    return check


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "use True or False"


def _echo(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in _TRUE_FALSE | {"debug"}:
        return None
    return "use True, False or 'debug'"


def _mapping(value: Any) -> str | None:
    if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        return None
    return "use a dict with string keys"


def _name(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "use a non-empty string"


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "pool_size": _whole(0, "use a whole number of connections, such as 5 (0: no limit)"),
    "max_overflow": _whole(-1, "use a whole number of connections, such as 10 (-1: no limit)"),
    "pool_timeout": _seconds(0, "use a number of seconds, such as 30"),
    "pool_recycle": _seconds(-1, "use a number of seconds, such as 3600 (-1: never)"),
    "pool_pre_ping": _flag,
    "pool_use_lifo": _flag,
    "hide_parameters": _flag,
    "echo": _echo,
    "echo_pool": _echo,
    "execution_options": _mapping,
    "query_cache_size": _whole(0, "use a whole number of statements, such as 500", text=False),
    "insertmanyvalues_page_size": _whole(1, "use a whole number of rows, such as 1000"),
    "logging_name": _name,
    "pool_logging_name": _name,
}

# connect() arguments the drivers only take as numbers: (backends, keys) -> what to use
_CONNECT_NUMBERS: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    (
        frozenset({"mysql", "mariadb"}),
        frozenset({"connect_timeout", "read_timeout", "write_timeout", "port"}),
    ),
    (frozenset({"sqlite"}), frozenset({"timeout"})),
    (frozenset({"postgresql"}), frozenset({"prepare_threshold"})),
)
# of those, the ones that also take None (psycopg: never prepare)
_CONNECT_NONE = frozenset({"prepare_threshold"})


def _isolation_levels(url: URL) -> tuple[str, ...]:
    dialect = url.get_dialect()()
    try:
        return tuple(dialect.get_isolation_level_values(None))  # type: ignore[arg-type]
    except Exception:  # a dialect that needs a real connection to say
        return ()


def check_option_values(url: URL, options: Mapping[str, Any], blame: str) -> None:
    """Check the values of the engine options in ``options`` (one layer, named
    ``blame``) for a database at ``url``.

    :raises ConfigurationError: a value the option cannot take.
    """
    for key, value in options.items():
        check = _CHECKS.get(key)
        wanted = check(value) if check is not None else None
        if key == "isolation_level":
            levels = _isolation_levels(url)
            if levels and value not in levels:
                wanted = "use one of " + ", ".join(f"'{level}'" for level in levels)
        if wanted:
            raise ConfigurationError(f"{blame} has '{key}': {value!r}; {wanted}.")
    connect_args = options.get("connect_args")
    if not isinstance(connect_args, Mapping):
        return
    backend = url.get_backend_name()
    for backends, keys in _CONNECT_NUMBERS:
        if backend not in backends:
            continue
        for key in keys & set(connect_args):
            value = connect_args[key]
            if value is None and key in _CONNECT_NONE:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                example = value.strip() if isinstance(value, str) else 10
                raise ConfigurationError(
                    f"{blame} has 'connect_args' '{key}': {value!r}; the '{url.drivername}'"
                    f" driver takes a whole number ({example or 10}), not"
                    f" {type(value).__name__}."
                )
