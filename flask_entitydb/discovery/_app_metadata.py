"""Each app's own tables when several apps of one process share a declarative base.

Two apps set up with one base (``Entity`` by default) share its ``MetaData``: after both
imported their entity modules it holds the tables of both. Each app sees only the tables
its own discovery found, plus those no app's discovery claims (tables of classes imported
by hand, say), so ``flask db migrate``, ``check``, ``create_all`` and the pytest plugin
of one app never touch the other's.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import sqlalchemy as sa
from flask import Flask

from flask_entitydb.state import EntityDBState, get_state

_apps: weakref.WeakSet[Flask] = weakref.WeakSet()
_views: weakref.WeakKeyDictionary[Flask, tuple[tuple[str, ...], sa.MetaData]] = (
    weakref.WeakKeyDictionary()
)


def register_app(app: Flask) -> None:
    """Remember ``app`` (weakly) as one of the process's EntityDB apps."""
    _apps.add(app)


def other_states(app: Flask) -> Iterator[EntityDBState]:
    """The EntityDB states of the process's other live apps."""
    for other in list(_apps):
        if other is not app:
            state = get_state(other, optional=True)
            if state is not None:
                yield state


def foreign_tables(app: Flask, state: EntityDBState) -> frozenset[str]:
    """Keys of the tables of the base's metadata that other apps' discoveries claim and
    this app's does not."""
    metadata = state.db.base.metadata
    claimed: set[str] = set()
    for other in other_states(app):
        if other.db.base.metadata is metadata:
            claimed |= other.discovery.tables
    if not claimed:  # the usual case: one app; its own tables need not be computed
        return frozenset()
    return frozenset(claimed - state.discovery.tables)


def app_metadata(app: Flask, state: EntityDBState) -> sa.MetaData:
    """The metadata of ``app``'s tables: the base's own when no other app claims any of
    its tables (the usual case), else a copy holding only this app's tables."""
    metadata = state.db.base.metadata
    foreign = foreign_tables(app, state)
    if not any(key in metadata.tables for key in foreign):
        return metadata
    keys = tuple(key for key in metadata.tables if key not in foreign)
    cached = _views.get(app)
    if cached is not None and cached[0] == keys:
        return cached[1]
    view = sa.MetaData(
        schema=metadata.schema,
        naming_convention=metadata.naming_convention,
        info=dict(metadata.info),
    )
    for key in keys:
        table = metadata.tables[key]
        table.to_metadata(view).info.update(table.info)  # info (the bind key) is not copied
    _views[app] = (keys, view)
    return view
