"""Building an app's engines.

Engines are Flask-SQLAlchemy's: ``SQLALCHEMY_DATABASE_URI``, ``SQLALCHEMY_ENGINE_OPTIONS``
and ``SQLALCHEMY_BINDS`` (other binds, and read replicas under reserved keys) are written
from the resolved :class:`~flask_entitydb._settings.model.Settings`. This module adds the
per-connection checks and the liveness policy to them, and returns the app's
:class:`~flask_entitydb._engine.routes.Routes`, with which its sessions
(:mod:`flask_entitydb._engine.session`) route each statement.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_entitydb._engine.listeners import install_listeners
from flask_entitydb._engine.liveness import install_liveness, liveness_engine_options
from flask_entitydb._engine.routes import Routes
from flask_entitydb._settings.model import DatabaseSettings, Settings


def replica_bind_key(key: str | None, number: int) -> str:
    """The reserved Flask-SQLAlchemy bind key of replica ``number`` of bind ``key``."""
    return f"{key or ''}~replica{number}"


def setup_engines(app: Flask, sqlalchemy: SQLAlchemy, settings: Settings) -> Routes:
    """Create ``app``'s engines (every bind's primary and replicas) with Flask-SQLAlchemy
    from ``settings``, attach the per-connection checks and the liveness policy
    (``ENTITYDB_LIVENESS``) to each, and return the routes."""

    # Flask-SQLAlchemy reads its per-app engine configuration from app.config.
    def options(database: DatabaseSettings) -> dict[str, Any]:
        policy = settings.liveness_of(database)
        return {**liveness_engine_options(policy, database.url), **database.engine_options}

    app.config["SQLALCHEMY_DATABASE_URI"] = settings.url
    binds: dict[str, dict[str, Any]] = {}
    databases: list[tuple[str | None, DatabaseSettings, bool]] = []
    for key in settings.bind_keys:
        bind = settings.bind(key)
        if key is None:
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options(bind.primary)
        else:
            binds[key] = {**options(bind.primary), "url": bind.primary.url}
        databases.append((key, bind.primary, False))
        for number, replica in enumerate(bind.replicas, 1):
            replica_key = replica_bind_key(key, number)
            binds[replica_key] = {**options(replica), "url": replica.url}
            databases.append((replica_key, replica, True))
    app.config["SQLALCHEMY_BINDS"] = binds
    sqlalchemy.init_app(app)
    with app.app_context():
        engines = sqlalchemy.engines
        for name, database, is_replica in databases:
            install_listeners(
                engines[name],
                require_tls=database.require_tls,
                source=database.url_source,
                replica=is_replica,
                connect_args=database.engine_options.get("connect_args"),
            )
            install_liveness(
                engines[name], settings.liveness_of(database), settings.liveness_ping_idle
            )
        primaries = {key: engines[key] for key in settings.bind_keys}
    router = None
    if settings.has_replicas:
        # the replica machinery loads only for apps that have replicas
        from flask_entitydb._engine.routing import ReplicaSet, Router, make_replica

        sets = {
            key: ReplicaSet(
                key=key,
                primary=primaries[key],
                replicas=[
                    make_replica(engines[replica_bind_key(key, number)], replica.shown_url)
                    for number, replica in enumerate(settings.bind(key).replicas, 1)
                ],
            )
            for key in settings.bind_keys
            if settings.bind(key).replicas
        }
        router = Router(
            sets,
            sticky_seconds=settings.replica_sticky_seconds,
            max_lag=settings.replica_max_lag,
        )
    return Routes(engines=primaries, router=router)
