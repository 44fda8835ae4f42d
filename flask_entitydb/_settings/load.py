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
``ENTITYDB_COMPARE_TYPE`` / ``ENTITYDB_COMPARE_SERVER_DEFAULT``
    Whether autogenerate and ``check`` compare column types / server defaults (default
    ``True``; Flask-Migrate's ``compare_type`` / ``compare_server_default``).
``ENTITYDB_PENDING_MIGRATIONS``
    ``"ignore"``, ``"warn"`` or ``"error"`` when the database is not at the head revision
    (default ``"warn"`` in debug mode, ``"ignore"`` otherwise).
``ENTITYDB_LIVENESS``
    ``"retry"``, ``"ping"`` or ``"none"``: how connections the server closed are kept from
    the app (default ``"retry"`` on MySQL/MariaDB and PostgreSQL; see
    :mod:`flask_entitydb._engine.liveness`).
``ENTITYDB_LIVENESS_PING_IDLE``
    Seconds of idleness after which ``"retry"`` pings a connection at checkout (default
    60; ``None``: never).
``ENTITYDB_BINDS``
    Bind key -> URL (or a dict with ``primary``, ``replicas``, ``engine_options``) of the
    app's other databases; a key an entity names in ``__bind_key__`` and that is not
    configured is read from ``DB_CONNECTION_STRING_<KEY>`` in the environment.
``ENTITYDB_REPLICAS``
    Read replica URLs of the default database (else ``DB_REPLICA_CONNECTION_STRINGS`` from
    the environment, comma-separated).
``ENTITYDB_REPLICA_STICKY_SECONDS``
    Seconds a client reads from the primary after its last write (default 2).
``ENTITYDB_REPLICA_MAX_LAG``
    Seconds of replication lag above which a replica is skipped (default: not checked).
``ENTITYDB_MIGRATION_LOCK_TIMEOUT``
    Seconds a migration's DDL waits for its table lock before failing (PostgreSQL
    ``lock_timeout``, MySQL/MariaDB ``lock_wait_timeout``); default 1, ``0`` or ``None``
    to wait forever.
``ENTITYDB_LINT_MAX_ROWS``
    Rows a data statement of a revision may touch (lock) in one transaction before
    ``flask db lint`` flags it (default 10,000).
``ENTITYDB_MODEL_MODULES``
    With ``EntityDB(flask_sqlalchemy_models=True)``, the modules of the app's models
    (default: the app package's ``models``, when it exists).

The default database's URL comes from the app config, else the environment, else the
embedded SQLite default (:func:`_raw_url`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from flask import Flask
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from flask_entitydb._settings.binds import configured_binds, default_replicas, read_bind
from flask_entitydb._settings.database import option_layers, prepare_database
from flask_entitydb._settings.keys import check_config_keys, check_environment
from flask_entitydb._settings.liveness import read_liveness
from flask_entitydb._settings.masking import describe_unparsed, mask
from flask_entitydb._settings.model import (
    LOCK_MODES,
    PENDING_POLICIES,
    SQLITE_DEFAULT_SOURCE,
    Settings,
)
from flask_entitydb._settings.model_modules import read_model_modules
from flask_entitydb._settings.values import flag, seconds, string_list
from flask_entitydb.errors import ConfigurationError

log = logging.getLogger("flask_entitydb")


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
        (configured, "DB_CONNECTION_STRING in the app config"),
        (legacy, "SQLALCHEMY_DATABASE_URI"),
    ):
        if value is not None:
            if from_env is not None and not _same_url(value, from_env):
                log.info(
                    "Using %s; the DB_CONNECTION_STRING environment variable (%s) is"
                    " ignored because the app config names a database",
                    source,
                    mask(from_env),
                )
            return value, source
    if from_env is not None:
        return from_env, "DB_CONNECTION_STRING in the environment"
    check_environment(os.environ)
    name = app.config.get("ENTITYDB_SQLITE_FILE", "entitydb.sqlite3")
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(
            f"'ENTITYDB_SQLITE_FILE' must be a file name, got {type(name).__name__}; for"
            " example app.config['ENTITYDB_SQLITE_FILE'] = 'app.sqlite3'."
        )
    path = os.path.join(app.instance_path, name)
    os.makedirs(app.instance_path, exist_ok=True)
    if app.debug or app.testing:
        log.info("DB_CONNECTION_STRING is not set; using the embedded SQLite database %s", path)
    else:
        log.warning(
            "DB_CONNECTION_STRING is not set; using the embedded SQLite database %s. If you"
            " exported it, quote the value (export DB_CONNECTION_STRING='...'): a shell cuts"
            " an unquoted value at its first '&' and never sets the variable.",
            path,
        )
    return URL.create("sqlite", database=path), SQLITE_DEFAULT_SOURCE


def _masked(value: str | URL) -> str:
    if isinstance(value, URL):
        return mask(value)
    try:
        return mask(make_url(value.strip()))
    except (ArgumentError, ValueError, AttributeError):
        return f"<{describe_unparsed(str(value))}>"


def load_settings(
    app: Flask, engine_options: Mapping[str, Any], *, model_modules: bool = False
) -> Settings:
    """Read and validate the configuration of ``app``.

    :param engine_options: the extension's constructor ``engine_options``.
    :param model_modules: read ``ENTITYDB_MODEL_MODULES`` (the extension's
        ``flask_sqlalchemy_models``).
    :raises ConfigurationError: a value is invalid; the message names the key.
    """
    check_config_keys(app.config)
    raw, source = _raw_url(app)
    # before the databases: each one's liveness policy is decided with its settings
    liveness, ping_idle = read_liveness(app.config)
    layers = option_layers(app, engine_options)
    default = prepare_database(raw, source, layers, liveness)
    configured, _ = configured_binds(app)
    binds = {key: read_bind(app, key, layers, liveness) for key in configured}
    sticky = seconds(app, "ENTITYDB_REPLICA_STICKY_SECONDS", 2.0, "2")
    max_lag = seconds(app, "ENTITYDB_REPLICA_MAX_LAG", None, "10")

    pending = app.config.get("ENTITYDB_PENDING_MIGRATIONS")
    if pending is None:
        pending = "warn" if app.debug else "ignore"
    if pending not in PENDING_POLICIES:
        raise ConfigurationError(
            f"'ENTITYDB_PENDING_MIGRATIONS' is {pending!r}; use 'ignore', 'warn' or 'error'."
        )

    ahead = app.config.get("ENTITYDB_DATABASE_AHEAD", "warn")
    if ahead not in ("warn", "error"):
        raise ConfigurationError(
            f"'ENTITYDB_DATABASE_AHEAD' is {ahead!r}; use 'warn' (serve, log a warning) or"
            " 'error' (answer 503 like a database behind)."
        )
    lock_mode = app.config.get("ENTITYDB_MIGRATION_LOCK", "auto")
    if lock_mode not in LOCK_MODES:
        raise ConfigurationError(
            f"'ENTITYDB_MIGRATION_LOCK' is {lock_mode!r}; use 'auto' (the lock suits the"
            " server) or 'lease' (a lease row, for clusters and proxies)."
        )
    lease_seconds = app.config.get("ENTITYDB_MIGRATION_LEASE_SECONDS", 15.0)
    if (
        isinstance(lease_seconds, bool)
        or not isinstance(lease_seconds, (int, float))
        or not 1 <= lease_seconds <= 3600
    ):
        raise ConfigurationError(
            f"'ENTITYDB_MIGRATION_LEASE_SECONDS' is {lease_seconds!r}; use a number of"
            " seconds from 1 to 3600, for example 15."
        )

    journal_table = app.config.get("ENTITYDB_MIGRATION_JOURNAL_TABLE", "flask_entitydb_journal")
    if not isinstance(journal_table, str) or not re.fullmatch(
        r"[A-Za-z_][A-Za-z0-9_]{0,62}", journal_table
    ):
        raise ConfigurationError(
            f"'ENTITYDB_MIGRATION_JOURNAL_TABLE' is {journal_table!r}; use a table name of"
            " letters, digits and underscores (at most 63), for example 'flask_entitydb_journal'."
        )

    migrations_dir = app.config.get("ENTITYDB_MIGRATIONS_DIR", "migrations")
    if not isinstance(migrations_dir, (str, os.PathLike)):
        raise ConfigurationError(
            f"'ENTITYDB_MIGRATIONS_DIR' must be a path, got {type(migrations_dir).__name__}."
        )
    # relative to the app's package, so the folder ships with it and works from any cwd
    migrations_dir = os.path.join(app.root_path, migrations_dir)

    return Settings(
        url=default.url,
        url_source=source,
        engine_options=default.engine_options,
        require_tls=default.require_tls,
        liveness=default.liveness,
        entity_packages=string_list(app, "ENTITYDB_ENTITY_PACKAGES"),
        entry_points=string_list(app, "ENTITYDB_ENTRY_POINTS"),
        migrations_dir=os.fspath(migrations_dir),
        exclude_tables=string_list(app, "ENTITYDB_EXCLUDE_TABLES") or (),
        pending_migrations=pending,
        replicas=default_replicas(app, default, layers, liveness),
        binds=MappingProxyType(binds),
        replica_sticky_seconds=sticky if sticky is not None else 2.0,
        replica_max_lag=max_lag,
        liveness_setting=liveness,
        liveness_ping_idle=ping_idle,
        migration_lock_timeout=_migration_lock_timeout(app),
        lint_max_rows=_lint_max_rows(app),
        database_ahead=ahead,
        migration_lock=lock_mode,
        migration_lease_seconds=float(lease_seconds),
        migration_journal_table=journal_table,
        compare_type=flag(app, "ENTITYDB_COMPARE_TYPE", True),
        compare_server_default=flag(app, "ENTITYDB_COMPARE_SERVER_DEFAULT", True),
        model_modules=read_model_modules(app) if model_modules else (),
        shown_url=default.shown_url,
    )


def _migration_lock_timeout(app: Flask) -> float | None:
    value = app.config.get("ENTITYDB_MIGRATION_LOCK_TIMEOUT", 1.0)
    if value is None:
        return None
    try:
        limit = float(value)
    except (TypeError, ValueError):
        limit = -1.0
    if limit < 0 or isinstance(value, bool):
        raise ConfigurationError(
            f"'ENTITYDB_MIGRATION_LOCK_TIMEOUT' is {value!r}; use a number of seconds such as"
            " 1, or 0 to let migrations wait for locks without limit."
        )
    return limit or None


def _lint_max_rows(app: Flask) -> int:
    value = app.config.get("ENTITYDB_LINT_MAX_ROWS", 10_000)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise ConfigurationError(
            f"'ENTITYDB_LINT_MAX_ROWS' is {value!r}; use a whole number of rows such as"
            " 10000 (0 flags every data statement that touches a row)."
        )
    return int(value)
