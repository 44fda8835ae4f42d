"""Which bind each table and statement belongs to, whether a statement writes, and one
app's :class:`Routes`: the primary engine of each bind and the read replica router.

An entity's bind is its ``__bind_key__``, copied to its table's ``info`` by
:func:`mark_bind_keys`, where the session's routing and the migrations read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.schema import ExecutableDDLElement

from flask_entitydb._compat.sqlalchemy import locks_rows
from flask_entitydb.errors import ConfigurationError

if TYPE_CHECKING:  # the replica machinery loads only for apps that have replicas
    from flask_entitydb._engine.routing import Router

BIND_KEY_INFO = "bind_key"
"""The key of a table's ``info`` (or its metadata's ``info``, as in Flask-SQLAlchemy)
naming its bind."""


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


def writes(clause: Any) -> bool:
    """Whether ``clause`` is not a plain read: DML, DDL, or a ``SELECT`` that locks rows
    (``FOR UPDATE``/``FOR SHARE``); such a statement never goes to a replica. (A
    ``text()`` cannot be told apart: the replica's read-only session refuses it, see
    :func:`~flask_entitydb._engine.routing.refuse_writes`.)"""
    if clause is None:
        return False
    if clause.is_dml:
        return True
    if clause.is_select:
        return locks_rows(clause)
    return isinstance(clause, ExecutableDDLElement)


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
