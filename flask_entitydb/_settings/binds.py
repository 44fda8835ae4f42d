"""The app's other databases and its read replicas: ``ENTITYDB_BINDS`` (or
``SQLALCHEMY_BINDS``), ``ENTITYDB_REPLICAS``, and the environment variables of the binds
entities name (``DB_CONNECTION_STRING_<KEY>``, ``DB_REPLICA_CONNECTION_STRINGS[_<KEY>]``)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from flask import Flask
from sqlalchemy.engine import URL

from flask_entitydb._settings.database import OptionLayers, option_layers, prepare_database
from flask_entitydb._settings.liveness import LivenessPolicy
from flask_entitydb._settings.model import BindSettings, DatabaseSettings, Settings
from flask_entitydb.errors import ConfigurationError

_BIND_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def bind_env_name(key: str, prefix: str = "DB_CONNECTION_STRING") -> str:
    """The environment variable of bind ``key``: ``DB_CONNECTION_STRING_ANALYTICS``."""
    return f"{prefix}_{key.upper()}"


def _replica_urls(value: Any, source: str) -> list[tuple[str | URL, str]]:
    """Replica URLs from a config list, or a comma-separated string (the environment)."""
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
    return [(part, f"URL #{number} of {source}") for number, part in enumerate(parts, 1)]


def _replicas(
    primary: DatabaseSettings,
    value: Any,
    source: str,
    layers: Iterable[tuple[str, Mapping[str, Any]]],
    liveness: LivenessPolicy | None,
) -> tuple[DatabaseSettings, ...]:
    if value is None:
        return ()
    layers = tuple(layers)
    found = []
    for raw, where in _replica_urls(value, source):
        replica = prepare_database(raw, where, layers, liveness)
        if replica.url.get_backend_name() != primary.url.get_backend_name():
            raise ConfigurationError(
                f"{where} is a '{replica.url.get_backend_name()}' database but its primary"
                f" ({primary.url_source}) is '{primary.url.get_backend_name()}'; a read"
                " replica must be a copy of its primary."
            )
        found.append(replica)
    return tuple(found)


def default_replicas(
    app: Flask,
    primary: DatabaseSettings,
    layers: Iterable[tuple[str, Mapping[str, Any]]],
    liveness: LivenessPolicy | None,
) -> tuple[DatabaseSettings, ...]:
    """The read replicas of the default database: ``ENTITYDB_REPLICAS``, else
    ``DB_REPLICA_CONNECTION_STRINGS`` (comma-separated) from the environment."""
    configured = app.config.get("ENTITYDB_REPLICAS")
    if configured is not None:
        return _replicas(primary, configured, "'ENTITYDB_REPLICAS'", layers, liveness)
    from_env = os.environ.get("DB_REPLICA_CONNECTION_STRINGS")
    if from_env is not None and from_env.strip():
        source = "DB_REPLICA_CONNECTION_STRINGS in the environment"
        return _replicas(primary, from_env, source, layers, liveness)
    return ()


def configured_binds(app: Flask) -> tuple[Mapping[Any, Any], str]:
    """``ENTITYDB_BINDS`` (else ``SQLALCHEMY_BINDS``) and the name of the key it came from."""
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


def read_bind(
    app: Flask,
    key: Any,
    layers: OptionLayers,
    liveness: LivenessPolicy | None,
    needed_by: str | None = None,
) -> BindSettings:
    """The settings of bind ``key``: its configured URL (else its environment variable),
    engine options and replicas.

    :param needed_by: the entity naming the bind, when it is not configured.
    """
    configured, name = configured_binds(app)
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
        source = f"{env} in the environment"
        if raw is None:
            reason = f"entity {needed_by} has __bind_key__ = '{key}'" if needed_by else where
            raise ConfigurationError(
                f"The bind '{key}' has no database URL ({reason}); set"
                f" app.config['ENTITYDB_BINDS']['{key}'] or the environment variable"
                f" {env}."
            )
    bind_layers = (*layers, (f"{where}['engine_options']", extra))
    primary = prepare_database(raw, source, bind_layers, liveness)
    if replicas is None:
        env = bind_env_name(key, "DB_REPLICA_CONNECTION_STRINGS")
        from_env = os.environ.get(env)
        if from_env is not None and from_env.strip():
            replicas, replicas_source = from_env, f"{env} in the environment"
    return BindSettings(
        key, primary, _replicas(primary, replicas, replicas_source, bind_layers, liveness)
    )


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
    layers = option_layers(app, engine_options)
    binds = dict(settings.binds)
    for key, entity in missing.items():
        binds[key] = read_bind(app, key, layers, settings.liveness_setting, needed_by=entity)
    return replace(settings, binds=MappingProxyType(binds))
