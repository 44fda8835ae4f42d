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
    the app (default ``"retry"`` on MySQL/MariaDB and PostgreSQL; see :mod:`.liveness`).
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
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from flask import Flask
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from flask_entitydb._engine.liveness import (
    DEFAULT_PING_IDLE,
    LivenessPolicy,
    database_liveness,
    read_liveness,
)
from flask_entitydb._settings.connection import (
    check_connect_keywords,
    check_engine,
    check_option_types,
    check_tls_options,
    merge_engine_options,
    parse_url,
    prepare_url,
)
from flask_entitydb._settings.masking import mask, mask_connection_string
from flask_entitydb.errors import ConfigurationError

log = logging.getLogger("flask_entitydb")

PendingPolicy = Literal["ignore", "warn", "error"]
_PENDING_POLICIES: tuple[PendingPolicy, ...] = ("ignore", "warn", "error")
AheadPolicy = Literal["warn", "error"]
MigrationLockMode = Literal["auto", "lease"]
_LOCK_MODES: tuple[MigrationLockMode, ...] = ("auto", "lease")


@dataclass(frozen=True)
class DatabaseSettings:
    """One database server the app connects to: a bind's primary or one of its read
    replicas, prepared like ``DB_CONNECTION_STRING`` is."""

    url: URL
    """The URL handed to SQLAlchemy (``ssl`` translated, dialect defaults applied)."""
    url_source: str
    """Where the URL came from, named in messages."""
    engine_options: Mapping[str, Any]
    require_tls: bool


@dataclass(frozen=True)
class BindSettings:
    """One bind (database) of the app: its primary and its read replicas."""

    key: str | None
    """The bind key (``None``: the default database)."""
    primary: DatabaseSettings
    replicas: tuple[DatabaseSettings, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Everything flask-entitydb reads from one app's configuration.

    ``url``, ``url_source``, ``engine_options`` and ``require_tls`` are the default
    database's; :meth:`bind` gives any bind's, replicas included.
    """

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
    replicas: tuple[DatabaseSettings, ...] = ()
    """Read replicas of the default database."""
    binds: Mapping[str, BindSettings] = field(default_factory=lambda: MappingProxyType({}))
    """The other databases, by bind key."""
    replica_sticky_seconds: float = 2.0
    replica_max_lag: float | None = None
    liveness_setting: LivenessPolicy | None = None
    """``ENTITYDB_LIVENESS`` as configured (``None``: each backend's default)."""
    liveness_ping_idle: float | None = DEFAULT_PING_IDLE
    """``ENTITYDB_LIVENESS_PING_IDLE`` (seconds, ``None``: never)."""
    migration_lock_timeout: float | None = 1.0
    """Seconds migrations' DDL waits for a table lock; ``None``: no limit."""

    def bind(self, key: str | None) -> BindSettings:
        """The settings of bind ``key`` (``None``: the default database).

        :raises KeyError: no such bind.
        """
        if key is None:
            primary = DatabaseSettings(
                self.url, self.url_source, self.engine_options, self.require_tls
            )
            return BindSettings(None, primary, self.replicas)
        return self.binds[key]

    def liveness_of(self, database: DatabaseSettings) -> LivenessPolicy:
        """The ``ENTITYDB_LIVENESS`` policy of one database (a bind's primary or replica).

        :raises ConfigurationError: it contradicts the database's ``pool_pre_ping``.
        """
        return database_liveness(self.liveness_setting, database.url, database.engine_options)

    @property
    def liveness(self) -> LivenessPolicy:
        """The ``ENTITYDB_LIVENESS`` policy of the default database."""
        return self.liveness_of(self.bind(None).primary)

    @property
    def bind_keys(self) -> tuple[str | None, ...]:
        """``None`` (the default database) and every other bind's key, in order."""
        return (None, *self.binds)

    @property
    def has_replicas(self) -> bool:
        """Whether any bind has a read replica."""
        return bool(self.replicas) or any(b.replicas for b in self.binds.values())

    database_ahead: AheadPolicy = "warn"
    """``ENTITYDB_DATABASE_AHEAD``: serve (``"warn"``) or refuse (``"error"``) when the
    database's revision is newer than the code's migrations."""
    migration_lock: MigrationLockMode = "auto"
    """``ENTITYDB_MIGRATION_LOCK``: ``"auto"`` (chosen per server) or ``"lease"``."""
    migration_lease_seconds: float = 15.0
    """``ENTITYDB_MIGRATION_LEASE_SECONDS``: a lease not renewed this long is taken over."""
    compare_type: bool = True
    """``ENTITYDB_COMPARE_TYPE``: autogenerate compares column types."""
    compare_server_default: bool = True
    """``ENTITYDB_COMPARE_SERVER_DEFAULT``: autogenerate compares server defaults."""


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
                    mask(from_env),
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
        return mask(value)
    try:
        return mask(make_url(value.strip()))
    except (ArgumentError, ValueError, AttributeError):
        return mask_connection_string(str(value))


def _flag(app: Flask, key: str, default: bool) -> bool:
    value = app.config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"'{key}' must be True or False, got {value!r}; for example"
            f" app.config['{key}'] = False."
        )
    return value


def _option_layers(
    app: Flask, engine_options: Mapping[str, Any]
) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """The engine option layers every database gets, weakest first, with their names."""
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
    return (
        ("EntityDB(engine_options=...)", engine_options),
        ("'SQLALCHEMY_ENGINE_OPTIONS'", legacy_options),
        ("'ENTITYDB_ENGINE_OPTIONS'", config_options),
    )


def prepare_database(
    raw: str | URL, source: str, layers: Iterable[tuple[str, Mapping[str, Any]]]
) -> DatabaseSettings:
    """Parse, prepare and check one connection string and its engine options (the same
    path for the default database, every bind and every replica).

    :param layers: engine option dicts with the name blamed in messages, weakest first.
    :raises ConfigurationError: the URL or an option is invalid.
    """
    url, dialect_defaults, tls = prepare_url(parse_url(raw, source), source)
    # every setting is checked on its own, so the message names the one at fault
    check_engine(url, dialect_defaults, source)
    present = [(blame, layer) for blame, layer in layers if layer]
    connect_arg_blame: dict[str, str] = {}
    for blame, layer in present:
        check_option_types(layer, blame)
        check_tls_options(url, tls, layer, blame, source)
        check_engine(url, merge_engine_options(dialect_defaults, layer), blame)
        connect_arg_blame.update(dict.fromkeys(layer.get("connect_args") or {}, blame))
    options = merge_engine_options(dialect_defaults, *(layer for _, layer in present))
    check_connect_keywords(url, options, source, connect_arg_blame)
    return DatabaseSettings(url, source, options, tls is not None and tls.encrypt)


def _number(app: Flask, key: str, default: float | None, example: str) -> float | None:
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


_BIND_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def bind_env_name(key: str, prefix: str = "DB_CONNECTION_STRING") -> str:
    """The environment variable of bind ``key``: ``DB_CONNECTION_STRING_ANALYTICS``."""
    return f"{prefix}_{key.upper()}"


def _replica_urls(value: Any, source: str) -> list[tuple[str | URL, str]]:
    """Replica URLs from a config list, or a comma-separated string (environment)."""
    if isinstance(value, (str, URL)):
        parts: list[Any] = (
            [part.strip() for part in str(value).split(",")] if isinstance(value, str) else [value]
        )
        parts = [part for part in parts if part]
    elif isinstance(value, Sequence) and all(isinstance(v, (str, URL)) for v in value):
        parts = list(value)
    else:
        raise ConfigurationError(
            f"{source} must be a list of database URLs, got {type(value).__name__}; for"
            f" example ['mysql+mysqldb://app:pw@replica1/app']."
        )
    if len(parts) == 1:
        return [(parts[0], source)]
    return [(part, f"{source} #{number}") for number, part in enumerate(parts, 1)]


def _replicas(
    primary: DatabaseSettings,
    value: Any,
    source: str,
    layers: Iterable[tuple[str, Mapping[str, Any]]],
) -> tuple[DatabaseSettings, ...]:
    if value is None:
        return ()
    layers = tuple(layers)
    found = []
    for raw, where in _replica_urls(value, source):
        replica = prepare_database(raw, where, layers)
        if replica.url.get_backend_name() != primary.url.get_backend_name():
            raise ConfigurationError(
                f"{where} is a '{replica.url.get_backend_name()}' database but its primary"
                f" ({primary.url_source}) is '{primary.url.get_backend_name()}'; a read"
                " replica must be a copy of its primary."
            )
        found.append(replica)
    return tuple(found)


def _default_replicas(
    app: Flask, primary: DatabaseSettings, layers: Iterable[tuple[str, Mapping[str, Any]]]
) -> tuple[DatabaseSettings, ...]:
    configured = app.config.get("ENTITYDB_REPLICAS")
    if configured is not None:
        return _replicas(primary, configured, "'ENTITYDB_REPLICAS'", layers)
    from_env = os.environ.get("DB_REPLICA_CONNECTION_STRINGS")
    if from_env is not None and from_env.strip():
        return _replicas(primary, from_env, "DB_REPLICA_CONNECTION_STRINGS (environment)", layers)
    return ()


def _configured_binds(app: Flask) -> tuple[Mapping[Any, Any], str]:
    configured = app.config.get("ENTITYDB_BINDS")
    name = "ENTITYDB_BINDS"
    if configured is None:
        configured = app.config.get("SQLALCHEMY_BINDS")
        name = "SQLALCHEMY_BINDS"
    if configured is None:
        return {}, "ENTITYDB_BINDS"
    if not isinstance(configured, Mapping):
        raise ConfigurationError(
            f"'{name}' must be a dict of bind key -> database URL, got"
            f" {type(configured).__name__}; for example app.config['{name}'] ="
            " {'analytics': 'postgresql+psycopg://app:pw@db/analytics'}."
        )
    return configured, name


def _bind(
    app: Flask,
    key: Any,
    layers: tuple[tuple[str, Mapping[str, Any]], ...],
    needed_by: str | None = None,
) -> BindSettings:
    configured, name = _configured_binds(app)
    if not isinstance(key, str) or not _BIND_KEY.match(key):
        raise ConfigurationError(
            f"'{name}' has the bind key {key!r}; use a name of letters, digits and '_'"
            " (the default database is DB_CONNECTION_STRING, not a bind)."
        )
    value = configured.get(key)
    where = f"'{name}['{key}']'"
    extra: Mapping[str, Any] = {}
    replicas: Any = None
    replicas_source = f"{where}['replicas']"
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"primary", "url", "replicas", "engine_options"})
        if name == "SQLALCHEMY_BINDS":  # Flask-SQLAlchemy's form: url + engine options
            extra = {k: v for k, v in value.items() if k != "url"}
            raw = value.get("url")
        else:
            if unknown:
                raise ConfigurationError(
                    f"{where} has the unknown key(s) {', '.join(map(repr, unknown))}; use"
                    " 'primary', 'replicas' and 'engine_options'."
                )
            raw = value.get("primary", value.get("url"))
            extra = value.get("engine_options", {})
            replicas = value.get("replicas")
            if not isinstance(extra, Mapping):
                raise ConfigurationError(
                    f"{where}['engine_options'] must be a dict of create_engine() options,"
                    f" got {type(extra).__name__}."
                )
        source = f"{where}['primary']"
    else:
        raw = value
        source = where
    if raw is None:
        env = bind_env_name(key)
        raw = os.environ.get(env)
        source = f"{env} (environment)"
        if raw is None:
            reason = f"entity {needed_by} has __bind_key__ = '{key}'" if needed_by else where
            raise ConfigurationError(
                f"The bind '{key}' has no database URL ({reason}); set"
                f" app.config['ENTITYDB_BINDS']['{key}'] or the environment variable"
                f" {env}."
            )
    bind_layers = (*layers, (f"{where}['engine_options']", extra))
    primary = prepare_database(raw, source, bind_layers)
    if replicas is None:
        env = bind_env_name(key, "DB_REPLICA_CONNECTION_STRINGS")
        from_env = os.environ.get(env)
        if from_env is not None and from_env.strip():
            replicas, replicas_source = from_env, f"{env} (environment)"
    return BindSettings(key, primary, _replicas(primary, replicas, replicas_source, bind_layers))


def with_entity_binds(
    app: Flask,
    settings: Settings,
    engine_options: Mapping[str, Any],
    wanted: Mapping[str, str],
) -> Settings:
    """``settings`` plus the binds the entities name (``__bind_key__``) that the config
    does not configure, read from ``DB_CONNECTION_STRING_<KEY>``.

    :param wanted: bind key -> the first entity naming it (for the message).
    :raises ConfigurationError: a bind has no URL, or its URL is invalid.
    """
    missing = {key: entity for key, entity in wanted.items() if key not in settings.binds}
    if not missing:
        return settings
    layers = _option_layers(app, engine_options)
    binds = dict(settings.binds)
    for key, entity in missing.items():
        binds[key] = _bind(app, key, layers, needed_by=entity)
    return replace(settings, binds=MappingProxyType(binds))


def load_settings(app: Flask, engine_options: Mapping[str, Any]) -> Settings:
    """Read and validate the configuration of ``app``.

    :param engine_options: the extension's constructor ``engine_options``.
    :raises ConfigurationError: a value is invalid; the message names the key.
    """
    raw, source = _raw_url(app)
    layers = _option_layers(app, engine_options)
    default = prepare_database(raw, source, layers)
    configured, _ = _configured_binds(app)
    binds = {key: _bind(app, key, layers) for key in configured}
    liveness, ping_idle = read_liveness(app.config)
    sticky = _number(app, "ENTITYDB_REPLICA_STICKY_SECONDS", 2.0, "2")
    max_lag = _number(app, "ENTITYDB_REPLICA_MAX_LAG", None, "10")

    pending = app.config.get("ENTITYDB_PENDING_MIGRATIONS")
    if pending is None:
        pending = "warn" if app.debug else "ignore"
    if pending not in _PENDING_POLICIES:
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
    if lock_mode not in _LOCK_MODES:
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

    migrations_dir = app.config.get("ENTITYDB_MIGRATIONS_DIR", "migrations")
    if not isinstance(migrations_dir, (str, os.PathLike)):
        raise ConfigurationError(
            f"'ENTITYDB_MIGRATIONS_DIR' must be a path, got {type(migrations_dir).__name__}."
        )
    # relative to the app's package, so the folder ships with it and works from any cwd
    migrations_dir = os.path.join(app.root_path, migrations_dir)

    settings = Settings(
        url=default.url,
        url_source=source,
        engine_options=default.engine_options,
        require_tls=default.require_tls,
        entity_packages=_string_list(app, "ENTITYDB_ENTITY_PACKAGES"),
        entry_points=_string_list(app, "ENTITYDB_ENTRY_POINTS"),
        migrations_dir=os.fspath(migrations_dir),
        exclude_tables=_string_list(app, "ENTITYDB_EXCLUDE_TABLES") or (),
        pending_migrations=pending,
        replicas=_default_replicas(app, default, layers),
        binds=MappingProxyType(binds),
        replica_sticky_seconds=sticky if sticky is not None else 2.0,
        replica_max_lag=max_lag,
        liveness_setting=liveness,
        liveness_ping_idle=ping_idle,
        migration_lock_timeout=_migration_lock_timeout(app),
        database_ahead=ahead,
        migration_lock=lock_mode,
        migration_lease_seconds=float(lease_seconds),
        compare_type=_flag(app, "ENTITYDB_COMPARE_TYPE", True),
        compare_server_default=_flag(app, "ENTITYDB_COMPARE_SERVER_DEFAULT", True),
    )
    for key in settings.bind_keys:  # a contradiction fails here, naming its URL
        bind = settings.bind(key)
        for database in (bind.primary, *bind.replicas):
            settings.liveness_of(database)
    return settings


def _migration_lock_timeout(app: Flask) -> float | None:
    value = app.config.get("ENTITYDB_MIGRATION_LOCK_TIMEOUT", 1.0)
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds < 0 or isinstance(value, bool):
        raise ConfigurationError(
            f"'ENTITYDB_MIGRATION_LOCK_TIMEOUT' is {value!r}; use a number of seconds such as"
            " 1, or 0 to let migrations wait for locks without limit."
        )
    return seconds or None
