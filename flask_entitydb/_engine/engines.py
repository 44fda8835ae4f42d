"""Building an app's engines and choosing the engine for each statement.

Engines are Flask-SQLAlchemy's: ``SQLALCHEMY_DATABASE_URI``, ``SQLALCHEMY_ENGINE_OPTIONS``
and ``SQLALCHEMY_BINDS`` (other binds, and read replicas under reserved keys) are written
from the resolved :class:`~flask_entitydb.config.Settings`. This module adds the
per-connection checks to them, and :class:`EntitySession` routes statements to them: by
the bind key of the entity's table (``__bind_key__``), then, for reads inside a request,
to a replica (:mod:`flask_entitydb._engine.replicas`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as _FlaskSQLAlchemySession
from sqlalchemy import orm

from flask_entitydb._engine.listeners import install_listeners
from flask_entitydb._engine.liveness import install_liveness, liveness_engine_options
from flask_entitydb._engine.replicas import ReplicaSet, Router, make_replica, remember_write
from flask_entitydb._engine.scoping import current_app_object
from flask_entitydb._settings.model import DatabaseSettings, Settings
from flask_entitydb.errors import ConfigurationError
from flask_entitydb.state import get_state

log = logging.getLogger("flask_entitydb")

BIND_KEY_INFO = "bind_key"
"""The key of a table's ``info`` (or its metadata's ``info``, as in Flask-SQLAlchemy)
naming its bind."""


def replica_bind_key(key: str | None, number: int) -> str:
    """The reserved Flask-SQLAlchemy bind key of replica ``number`` of bind ``key``."""
    return f"{key or ''}~replica{number}"


def table_bind_key(table: Any) -> str | None:
    """The bind key of ``table`` (``None``: the default database)."""
    info = getattr(table, "info", None)
    key = info.get(BIND_KEY_INFO) if info else None
    if key is None:
        metadata = getattr(table, "metadata", None)
        key = metadata.info.get(BIND_KEY_INFO) if metadata is not None else None
    return key if isinstance(key, str) else None


def tables_of(metadata: sa.MetaData, key: str | None) -> list[sa.Table]:
    """The tables of ``metadata`` that belong to bind ``key``, in dependency order."""
    return [table for table in metadata.sorted_tables if table_bind_key(table) == key]


def mark_bind_keys(base: type[orm.DeclarativeBase]) -> dict[str, str]:
    """Copy each entity's ``__bind_key__`` to its table's ``info``, where routing and
    migrations read it.

    :returns: bind key -> the name of the first entity (or table) using it.
    :raises ConfigurationError: two entities mapped to one table name different binds.
    """
    used: dict[str, str] = {}
    for mapper in sorted(base.registry.mappers, key=lambda m: m.class_.__qualname__):
        key = getattr(mapper.class_, "__bind_key__", None)
        table = mapper.local_table
        if key is None or not isinstance(table, sa.Table):
            continue
        if not isinstance(key, str):
            raise ConfigurationError(
                f"Entity '{mapper.class_.__name__}' has __bind_key__ = {key!r}; use the name"
                " of a bind in ENTITYDB_BINDS, a string."
            )
        existing = table.info.get(BIND_KEY_INFO)
        if existing is not None and existing != key:
            raise ConfigurationError(
                f"Entity '{mapper.class_.__name__}' has __bind_key__ = '{key}' but its table"
                f" '{table.name}' belongs to the bind '{existing}'; give both the same bind."
            )
        table.info[BIND_KEY_INFO] = key
    for mapper in sorted(base.registry.mappers, key=lambda m: m.class_.__qualname__):
        key = table_bind_key(mapper.local_table)
        if key is not None:
            used.setdefault(key, f"'{mapper.class_.__name__}'")
    for table in base.metadata.tables.values():
        key = table_bind_key(table)
        if key is not None:
            used.setdefault(key, f"table '{table.name}'")
    return used


@dataclass(frozen=True)
class Routes:
    """One app's engines: the primary of each bind, and the replica router."""

    engines: Mapping[str | None, sa.Engine]
    """Bind key -> primary engine (``None``: the default database)."""
    router: Router | None = None
    single: sa.Engine | None = field(init=False, repr=False)
    """The one engine, when there are neither binds nor replicas (read by every new
    session, so it is worked out once)."""
    _keys: dict[Any, str | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        single = self.engines.get(None) if self.router is None and len(self.engines) == 1 else None
        object.__setattr__(self, "single", single)

    def key_of(self, mapper: Any, clause: Any) -> str | None:
        """The bind key a statement's entity or table belongs to."""
        table = None
        if mapper is not None:
            found = self._keys.get(mapper, _MISSING)
            if found is not _MISSING:
                return found  # type: ignore[no-any-return]
            table = sa.inspect(mapper).local_table
            key = table_bind_key(table)
            self._keys[mapper] = key
            return key
        if isinstance(clause, sa.Table):
            table = clause
        elif isinstance(clause, sa.sql.dml.UpdateBase):
            table = clause.table
        elif isinstance(clause, sa.Select):
            table = next((f for f in clause.get_final_froms() if isinstance(f, sa.Table)), None)
        return table_bind_key(table) if table is not None else None

    def primary(self, key: str | None) -> sa.Engine:
        try:
            return self.engines[key]
        except KeyError:
            raise sa.exc.UnboundExecutionError(
                f"The bind '{key}' is not configured; add it to ENTITYDB_BINDS or set"
                f" DB_CONNECTION_STRING_{(key or '').upper()}."
            ) from None


_MISSING: Any = object()


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
    databases: list[tuple[str | None, DatabaseSettings]] = []
    for key in settings.bind_keys:
        bind = settings.bind(key)
        if key is None:
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options(bind.primary)
        else:
            binds[key] = {**options(bind.primary), "url": bind.primary.url}
        databases.append((key, bind.primary))
        for number, replica in enumerate(bind.replicas, 1):
            replica_key = replica_bind_key(key, number)
            binds[replica_key] = {**options(replica), "url": replica.url}
            databases.append((replica_key, replica))
    app.config["SQLALCHEMY_BINDS"] = binds
    sqlalchemy.init_app(app)
    with app.app_context():
        engines = sqlalchemy.engines
        for name, database in databases:
            install_listeners(
                engines[name], require_tls=database.require_tls, source=database.url_source
            )
            install_liveness(
                engines[name], settings.liveness_of(database), settings.liveness_ping_idle
            )
        primaries = {key: engines[key] for key in settings.bind_keys}
    router = None
    if settings.has_replicas:
        sets = {
            key: ReplicaSet(
                key=key,
                primary=primaries[key],
                replicas=[
                    make_replica(engines[replica_bind_key(key, number)])
                    for number in range(1, len(settings.bind(key).replicas) + 1)
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


class EntitySession(_FlaskSQLAlchemySession):
    """Flask-SQLAlchemy's session, routing each statement to its bind's engine and, for
    reads inside a ``GET``/``HEAD``/``OPTIONS`` request, to a read replica.

    With a single engine (the usual case) it skips Flask-SQLAlchemy's per-statement
    engine lookup: that engine is found once, when the session is created, instead of on
    every flush and query (see ``benchmarks/README.md``).

    A :class:`~sqlalchemy.engine.Connection` given as the session's ``bind`` (SQLAlchemy's
    recipe for joining an external transaction, ``sessionmaker.configure(bind=connection,
    join_transaction_mode="create_savepoint")``, which the pytest plugin uses) takes the
    place of the default bind's engine, replicas included; Flask-SQLAlchemy's session
    ignores it.
    """

    _entitydb_primary = False

    def __init__(self, db: SQLAlchemy, **kwargs: Any) -> None:
        super().__init__(db, **kwargs)
        state = get_state(current_app_object(), optional=True)
        routes: Routes | None = getattr(state, "routes", None)
        self._single_engine: sa.Engine | sa.Connection | None
        if routes is None:  # not set up by EntityDB: Flask-SQLAlchemy's own routing
            engines = db.engines
            self._single_engine = engines.get(None) if len(engines) == 1 else None
        else:
            self._single_engine = routes.single
        self._routes = routes
        joined = self.bind if isinstance(self.bind, sa.Connection) else None
        self._joined: sa.Connection | None = joined
        if joined is not None and self._single_engine is not None:
            self._single_engine = joined
        if routes is not None and routes.router is not None:
            self._entitydb_reads: dict[str | None, sa.Engine] = {}
            self._entitydb_written: set[str | None] = set()

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: sa.Engine | sa.Connection | None = None,
        **kwargs: Any,
    ) -> sa.Engine | sa.Connection:
        if bind is None:
            single = self._single_engine
            if single is not None:
                return single
            routes = self._routes
            if routes is not None:
                return self._route(routes, mapper, clause)
        found = super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)
        if bind is None and self._joined is not None and found is self._db.engines.get(None):
            return self._joined
        return found

    def _route(self, routes: Routes, mapper: Any, clause: Any) -> sa.Engine | sa.Connection:
        key = routes.key_of(mapper, clause)
        if key is None and self._joined is not None:
            return self._joined
        primary = routes.primary(key)
        router = routes.router
        if router is None:
            return primary
        if self._flushing or getattr(clause, "is_dml", False):
            self._entitydb_written.add(key)
            self._entitydb_reads[key] = primary  # read your own writes in this request
            return primary
        if self._entitydb_primary:
            return primary
        engine = self._entitydb_reads.get(key)
        if engine is None:
            engine = self._entitydb_reads[key] = router.read_engine(key, primary)
        return engine

    def commit(self) -> None:
        """Commit; with read replicas, a commit on a primary counts as the client's write
        (its next reads wait for the replicas to replay it)."""
        routes = self._routes
        if routes is None or routes.router is None:
            super().commit()
            return
        for key, engine in self._entitydb_reads.items():
            if engine is routes.engines.get(key):
                self._entitydb_written.add(key)
        super().commit()
        if self._entitydb_written:
            remember_write(routes.router, self._entitydb_written)
            self._entitydb_written = set()

    def close(self) -> None:
        """Close the session; a connection the database has dropped is discarded instead
        of rolled back, so the teardown at the end of a request never raises for it.

        Done here rather than in a teardown function of our own: Flask-SQLAlchemy's
        teardown already calls it, and a second teardown would cost every request (even
        one that never touches the database) a dozen function calls.
        """
        try:
            super().close()
        except (sa.exc.DBAPIError, sa.exc.DisconnectionError) as error:
            log.warning(
                "Discarded a database connection that failed while closing the session: %s",
                type(error).__name__,
            )
            self.invalidate()
