"""SQLAlchemy's private API and internal behaviour: the flush flag of a session, the
registry of a scoped session, and the class a ``sessionmaker`` makes."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.util import ScopedRegistry

_S = TypeVar("_S", bound=orm.Session)


def flushing_property() -> property:
    """A read-only property for a :class:`~sqlalchemy.orm.Session` subclass: ``True``
    while the session flushes, including while the flush asks ``get_bind()`` for its
    connections (SQLAlchemy's private ``Session._flushing``).

    SQLAlchemy has no public flag: ``before_flush``/``after_flush`` listeners would cost
    two Python calls on every flush of every app. The property reads the attribute with
    :func:`operator.attrgetter`, so reading it costs no Python call either.
    """
    return property(attrgetter("_flushing"), doc="Whether the session is flushing.")


def scoped_registry(scoped: orm.scoped_session[_S]) -> ScopedRegistry[_S]:
    """The registry that keeps the sessions of ``scoped``, one per scope
    (``scoped_session.registry``, which has no documented accessor)."""
    return scoped.registry


def use_registry(scoped: orm.scoped_session[_S], registry: ScopedRegistry[_S]) -> None:
    """Make ``scoped`` keep its sessions in ``registry`` (a
    :class:`~sqlalchemy.util.ScopedRegistry` subclass).

    ``scoped_session()`` takes only a scope function, which its registry calls on every
    lookup; every method of the scoped session goes through its ``registry`` attribute,
    replaced here.
    """
    scoped.registry = registry


def mix_into_sessions(factory: orm.sessionmaker[Any], mixin: type) -> None:
    """Make ``factory`` create its sessions from a subclass of its session class with
    ``mixin`` first in the method order (once: nothing when it already does).

    A ``sessionmaker`` has no public way to change its class once made
    (``configure()`` changes the keyword arguments passed to the class, not the class);
    the subclass keeps the event listeners registered on ``factory``.
    """
    if not issubclass(factory.class_, mixin):
        factory.class_ = type(factory.class_.__name__, (mixin, factory.class_), {})


def locks_rows(statement: Any) -> bool:
    """Whether a ``SELECT`` locks the rows it reads (``with_for_update()``: ``FOR
    UPDATE``/``FOR SHARE``), SQLAlchemy's private ``GenerativeSelect._for_update_arg``:
    such a statement writes a lock, so it never goes to a read replica."""
    return getattr(statement, "_for_update_arg", None) is not None


def after_commit(engine: sa.Engine, callback: Callable[[], None]) -> None:
    """Call ``callback`` after each commit of a transaction of ``engine`` (not a
    savepoint's release), however it was made: ``Session.commit()``, ``Session.begin()``
    as a context manager, ``Connection.commit()``, ``Engine.begin()``.

    The engine's ``commit`` event would do, but any connection event makes SQLAlchemy
    dispatch (empty) events on every statement of the engine's connections; wrapping the
    engine's own dialect's ``do_commit()`` (each engine has a dialect of its own) costs one
    call per commit and nothing per statement.
    """
    dialect = engine.dialect
    commit = dialect.do_commit

    def do_commit(dbapi_connection: Any) -> None:
        commit(dbapi_connection)
        callback()

    dialect.do_commit = do_commit  # type: ignore[method-assign]
