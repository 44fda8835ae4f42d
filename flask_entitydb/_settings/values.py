"""Typed readers of single config values (flags, seconds, lists of strings), each
refusing a wrong value with a one-line message that names the key and shows an example."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

from flask import Flask

from flask_entitydb.errors import ConfigurationError


def string_list(
    app: Flask, key: str, what: str = "strings", example: str = "acme.entities"
) -> tuple[str, ...] | None:
    """``app.config[key]`` as a tuple of strings (a string is split at commas and spaces);
    ``None`` when not set.

    :param what: what the strings are, and ``example`` one of them, for the message.
    """
    value = app.config.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(
            f"'{key}' must be a list of {what}, got {type(value).__name__}; for example"
            f" app.config['{key}'] = ['{example}']."
        )
    return tuple(value)


def flag(app: Flask, key: str, default: bool) -> bool:
    """``app.config[key]``, which must be ``True`` or ``False``."""
    value = app.config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"'{key}' must be True or False, got {value!r}; for example"
            f" app.config['{key}'] = False."
        )
    return value


def seconds(app: Flask, key: str, default: float | None, example: str) -> float | None:
    """``app.config[key]`` as a finite number of seconds, 0 or more (a string of one is
    accepted); ``None`` stays ``None``."""
    value = app.config.get(key, default)
    if value is None:
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigurationError(
            f"'{key}' must be a number of seconds, 0 or more, got {value!r}; for example"
            f" app.config['{key}'] = {example}."
        )
    return float(value)
