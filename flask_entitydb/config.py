"""Reading the app's configuration once, at ``init_app``, into a frozen :class:`Settings`.

Config keys (all optional):

``DB_CONNECTION_STRING``
    Database URL. A URL in the app config (this key or ``SQLALCHEMY_DATABASE_URI``) wins
    over the environment variable of the same name.
``SQLALCHEMY_DATABASE_URI``
    The same, for apps coming from Flask-SQLAlchemy; set to a different URL than
    ``DB_CONNECTION_STRING`` in the same config, it is an error.
``ENTITYDB_SQLITE_FILE``
    File name of the embedded SQLite default, in the instance folder
    (default ``entitydb.sqlite3``).
``ENTITYDB_ENGINE_OPTIONS``
    Dict of :func:`sqlalchemy.create_engine` options; wins over the defaults and the
    constructor's ``engine_options``.
``ENTITYDB_ENTITY_PACKAGES``
    List of dotted package names to search for ``*_entity.py`` modules.
``ENTITYDB_ENTRY_POINTS``
    List of ``flask_entitydb.entities`` entry point names to use (default: all installed).
``ENTITYDB_MIGRATIONS_DIR``
    Migrations folder, relative to the app's ``root_path`` (default ``migrations``).
``ENTITYDB_EXCLUDE_TABLES``
    List of glob patterns of tables that autogenerate and ``check`` leave alone.
``ENTITYDB_PENDING_MIGRATIONS``
    ``"ignore"``, ``"warn"`` or ``"error"`` when the database is not at the head revision
    (default ``"warn"`` in debug mode, ``"ignore"`` otherwise).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from flask import Flask
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .connection import (
    check_engine,
    check_option_types,
    merge_engine_options,
    parse_url,
    prepare_url,
)
from .errors import ConfigurationError
from .masking import mask_unparsed, mask_url

log = logging.getLogger("flask_entitydb")

PendingPolicy = Literal["ignore", "warn", "error"]
_PENDING_POLICIES: tuple[PendingPolicy, ...] = ("ignore", "warn", "error")


@dataclass(frozen=True)
class Settings:
    """Everything flask-entitydb reads from one app's configuration."""

    url: URL
    """The URL handed to SQLAlchemy (``ssl`` translated, dialect defaults applied)."""
    url_source: str
    """Where the URL came from, named in messages (for example ``DB_CONNECTION_STRING``)."""
    engine_options: Mapping[str, Any]
    require_tls: bool
    entity_packages: tuple[str, ...] | None
    entry_points: tuple[str, ...] | None
    migrations_dir: str
    exclude_tables: tuple[str, ...]
    pending_migrations: PendingPolicy


def _string_list(app: Flask, key: str) -> tuple[str, ...] | None:
    value = app.config.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(
            f"'{key}' must be a list of strings, got {type(value).__name__}; for example"
            f" app.config['{key}'] = ['acme.entities']."
        )
    return tuple(value)


def _same_url(first: str | URL, second: str | URL) -> bool:
    def text(value: str | URL) -> str:
        if isinstance(value, URL):
            return value.render_as_string(hide_password=False)
        try:
            return make_url(value.strip()).render_as_string(hide_password=False)
        except (ArgumentError, ValueError, AttributeError):
            return str(value)

    return text(first) == text(second)


def _raw_url(app: Flask) -> tuple[str | URL, str]:
    """The URL and where it came from: a URL the app's config names always wins over the
    environment, so a test config (``sqlite://``) can never reach the database an exported
    ``DB_CONNECTION_STRING`` names."""
    configured = app.config.get("DB_CONNECTION_STRING")
    legacy = app.config.get("SQLALCHEMY_DATABASE_URI")
    if configured is not None and legacy is not None and not _same_url(configured, legacy):
        raise ConfigurationError(
            "The app config sets both 'DB_CONNECTION_STRING'"
            f" ('{_masked(configured)}') and 'SQLALCHEMY_DATABASE_URI'"
            f" ('{_masked(legacy)}') to different databases; keep one of them."
        )
    from_env = os.environ.get("DB_CONNECTION_STRING")
    for value, source in (
        (configured, "DB_CONNECTION_STRING (app config)"),
        (legacy, "SQLALCHEMY_DATABASE_URI"),
    ):
        if value is not None:
            if from_env is not None and not _same_url(value, from_env):
                log.info(
                    "Using %s; the DB_CONNECTION_STRING environment variable (%s) is"
                    " ignored because the app config names a database",
                    source,
                    mask_url(from_env),
                )
            return value, source
    if from_env is not None:
        return from_env, "DB_CONNECTION_STRING (environment)"
    name = app.config.get("ENTITYDB_SQLITE_FILE", "entitydb.sqlite3")
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(
            f"'ENTITYDB_SQLITE_FILE' must be a file name, got {type(name).__name__}; for"
            " example app.config['ENTITYDB_SQLITE_FILE'] = 'app.sqlite3'."
        )
    path = os.path.join(app.instance_path, name)
    os.makedirs(app.instance_path, exist_ok=True)
    log.info("DB_CONNECTION_STRING is not set; using the embedded SQLite database %s", path)
    return URL.create("sqlite", database=path), "the SQLite default"


def _masked(value: str | URL) -> str:
    if isinstance(value, URL):
        return mask_url(value)
    try:
        return mask_url(make_url(value.strip()))
    except (ArgumentError, ValueError, AttributeError):
        return mask_unparsed(str(value))


def load_settings(app: Flask, engine_options: Mapping[str, Any]) -> Settings:
    """Read and validate the configuration of ``app``.

    :param engine_options: the extension's constructor ``engine_options``.
    :raises ConfigurationError: a value is invalid; the message names the key.
    """
    raw, source = _raw_url(app)
    url, dialect_defaults, require_tls = prepare_url(parse_url(raw, source), source)

    config_options = app.config.get("ENTITYDB_ENGINE_OPTIONS", {})
    if not isinstance(config_options, Mapping):
        raise ConfigurationError(
            "'ENTITYDB_ENGINE_OPTIONS' must be a dict of create_engine() options, got"
            f" {type(config_options).__name__}."
        )
    legacy_options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
    if not isinstance(legacy_options, Mapping):
        raise ConfigurationError(
            "'SQLALCHEMY_ENGINE_OPTIONS' must be a dict of create_engine() options, got"
            f" {type(legacy_options).__name__}."
        )
    # every setting is checked on its own, so the message names the one at fault
    check_engine(url, dialect_defaults, source)
    for blame, layer in (
        ("EntityDB(engine_options=...)", engine_options),
        ("'SQLALCHEMY_ENGINE_OPTIONS'", legacy_options),
        ("'ENTITYDB_ENGINE_OPTIONS'", config_options),
    ):
        if layer:
            check_option_types(layer, blame)
            check_engine(url, merge_engine_options(dialect_defaults, layer), blame)
    options = merge_engine_options(dialect_defaults, engine_options, legacy_options, config_options)

    pending = app.config.get("ENTITYDB_PENDING_MIGRATIONS")
    if pending is None:
        pending = "warn" if app.debug else "ignore"
    if pending not in _PENDING_POLICIES:
        raise ConfigurationError(
            f"'ENTITYDB_PENDING_MIGRATIONS' is {pending!r}; use 'ignore', 'warn' or 'error'."
        )

    migrations_dir = app.config.get("ENTITYDB_MIGRATIONS_DIR", "migrations")
    if not isinstance(migrations_dir, (str, os.PathLike)):
        raise ConfigurationError(
            f"'ENTITYDB_MIGRATIONS_DIR' must be a path, got {type(migrations_dir).__name__}."
        )
    # relative to the app's package, so the folder ships with it and works from any cwd
    migrations_dir = os.path.join(app.root_path, migrations_dir)

    return Settings(
        url=url,
        url_source=source,
        engine_options=options,
        require_tls=require_tls,
        entity_packages=_string_list(app, "ENTITYDB_ENTITY_PACKAGES"),
        entry_points=_string_list(app, "ENTITYDB_ENTRY_POINTS"),
        migrations_dir=os.fspath(migrations_dir),
        exclude_tables=_string_list(app, "ENTITYDB_EXCLUDE_TABLES") or (),
        pending_migrations=pending,
    )
