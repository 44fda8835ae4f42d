"""Engine options: their types checked, merged in layers, and tried on an engine that is
created but never connected, so that what SQLAlchemy or the driver would refuse fails at
start-up with the setting to blame."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError

from flask_entitydb._settings import drivers
from flask_entitydb._settings.drivers import find_driver
from flask_entitydb._settings.keys import did_you_mean
from flask_entitydb._settings.masking import mask
from flask_entitydb.errors import ConfigurationError

MYSQL_POOL_RECYCLE = 3600
"""Seconds after which a pooled MySQL connection is replaced (server default
``wait_timeout`` is 28800)."""


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
            hint = (
                " (for no pool_timeout, leave it out: the default is 30 seconds)"
                if key == "pool_timeout"
                else ""
            )
            raise ConfigurationError(f"{blame} has '{key}': {value!r}; use a finite number{hint}.")
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
    url: URL, options: Mapping[str, Any], source: str, blame: Mapping[str, str], shown: str
) -> None:
    """Refuse, at start-up, keywords the driver's ``connect()`` does not take (a typo such
    as ``?SSL=true`` or ``?bogus=1``, ``charset`` for mariadb, ``ssl_mode`` for pymysql),
    which would otherwise be a ``TypeError`` at the first connection.

    :param blame: for each ``connect_args`` key, the setting it came from.
    :param shown: the URL as configured, masked (the one named in the message).
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
        where = blame.get(key) or f"{source} in '{shown}'"
        choices = [*sorted(known or ()), "ssl"]
        hint = did_you_mean(key.lower(), choices, cutoff=0.75)
        if key.lower().startswith("ssl"):
            hint += "; for TLS use 'ssl=true' (and 'ssl_ca=') in the URL"
        raise ConfigurationError(
            f"{where} passes '{key}' to the '{url.drivername}' driver, which does not take"
            f" it{hint}; remove it or use one of the driver's connect() parameters."
        )


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
