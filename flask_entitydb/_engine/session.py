"""The session, made in this one module: ``db.session`` is Flask-SQLAlchemy's scoped
session, built by :func:`make_flask_sqlalchemy` with

- :class:`EntitySession`, the session class: it routes each statement to its bind's
  engine and, for reads inside a ``GET``/``HEAD``/``OPTIONS`` request, to a read replica;
- :class:`AppContextRegistry`: one session per Flask app context, found with a single
  context-variable lookup;
- with read replicas, :mod:`.replica_reads` adds to it (a read that fails on a replica
  runs again on the primary);
- :func:`forced_primary`, behind ``db.primary()``.

Flask-SQLAlchemy scopes its session to the app context through a scope function that
goes through Flask's ``app_ctx`` proxy: three Python calls each time ``db.session`` is
used, several times per request. The registry here reads the context variable behind that
proxy directly, a single C call, and keys the sessions by the same app context object.
This is a hot path (``benchmarks/request_bench.py`` counts the calls per request): keep
per-statement and per-request work free of extra Python calls.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as _FlaskSQLAlchemySession
from sqlalchemy import orm
from sqlalchemy.util import ScopedRegistry

from flask_entitydb._compat.flask import app_context_var
from flask_entitydb._compat.sqlalchemy import (
    flushing_property,
    use_registry,
)
from flask_entitydb._engine.routes import Routes, writes
from flask_entitydb.state import get_state

_T = TypeVar("_T")

log = logging.getLogger("flask_entitydb")

OUTSIDE_APP_CONTEXT = (
    "Working outside of application context: 'db.session' belongs to an app context;"
    " push one with 'with app.app_context():' (a request or the 'flask' command push one"
    " for you)."
)

_app_context = app_context_var()


def make_flask_sqlalchemy(
    session_options: Mapping[str, Any] | None, model_options: Mapping[str, Any]
) -> SQLAlchemy:
    """The Flask-SQLAlchemy object behind an :class:`~flask_entitydb.EntityDB`; its
    ``session`` is ``db.session``.

    :param session_options: ``EntityDB(session_options=...)``, for the ``sessionmaker``;
        a ``class_`` there replaces :class:`EntitySession`, a ``scopefunc`` replaces the
        app-context scope.
    :param model_options: Flask-SQLAlchemy's ``metadata``, ``model_class`` and
        ``query_class`` (with ``flask_sqlalchemy_models``).
    """
    options: dict[str, Any] = {"class_": EntitySession, **(session_options or {})}
    custom_scope = "scopefunc" in options
    sqlalchemy = SQLAlchemy(session_options=options, add_models_to_shell=False, **model_options)
    if not custom_scope:
        # Sessions are scoped to the app context as in Flask-SQLAlchemy, found with one
        # context-variable lookup instead of a walk through the app_ctx proxy.
        scoped = sqlalchemy.session
        use_registry(scoped, AppContextRegistry(scoped.session_factory))
    return sqlalchemy


def current_context() -> Any:
    """The current app context.

    :raises RuntimeError: there is none.
    """
    try:
        return _app_context.get()
    except LookupError:
        raise RuntimeError(OUTSIDE_APP_CONTEXT) from None


def current_app_object() -> Flask:
    """The current app, without going through the ``current_app`` proxy.

    :raises RuntimeError: there is no app context.
    """
    return current_context().app  # type: ignore[no-any-return]


class AppContextRegistry(ScopedRegistry[_T]):
    """A :class:`~sqlalchemy.util.ScopedRegistry` keyed by the current Flask app context,
    for ``scoped_session.registry``."""

    def __init__(self, createfunc: Callable[[], _T]) -> None:
        super().__init__(createfunc, current_context)

    def __call__(self) -> _T:
        # current_context(), inlined: this runs each time db.session is used
        try:
            key = _app_context.get()
        except LookupError:
            raise RuntimeError(OUTSIDE_APP_CONTEXT) from None
        try:
            return self.registry[key]  # type: ignore[no-any-return]
        except KeyError:
            return self.registry.setdefault(key, self.createfunc())  # type: ignore[no-any-return]

    def has(self) -> bool:
        """Whether the current app context has a session (``False`` outside one)."""
        return _app_context.get(None) in self.registry

    def clear(self) -> None:
        """Forget the current app context's session, if any."""
        self.registry.pop(_app_context.get(None), None)


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
    _entitydb_flushing = flushing_property()

    def __init__(
        self,
        db: SQLAlchemy,
        joined_binds: Mapping[str, sa.Connection] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(db, **kwargs)
        self._fsa = db  # the Flask-SQLAlchemy object: its own reference (_db) is private
        state = get_state(current_app_object(), optional=True)
        # the state names the routes by a protocol; no cast() call on this per-request path
        routes: Routes | None = state.routes if state is not None else None  # type: ignore[assignment]
        self._single_engine: sa.Engine | sa.Connection | None
        if routes is None:  # not set up by EntityDB: Flask-SQLAlchemy's own routing
            engines = db.engines
            self._single_engine = engines.get(None) if len(engines) == 1 else None
        else:
            self._single_engine = routes.single
        self._routes = routes
        joined = self.bind if isinstance(self.bind, sa.Connection) else None
        self._joined: sa.Connection | None = joined
        # bind key -> the connection whose transaction its statements join (pytest plugin)
        self._joined_keys: dict[str | None, sa.Connection] | None = None
        if joined is not None:
            self._joined_keys = {None: joined}
            self._joined_keys.update(joined_binds or {})
            if self._single_engine is not None:
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
        if bind is None and self._joined is not None and found is self._fsa.engines.get(None):
            return self._joined
        return found

    def _route(self, routes: Routes, mapper: Any, clause: Any) -> sa.Engine | sa.Connection:
        key = routes.key_of(mapper, clause)
        joined = self._joined_keys
        if joined is not None:
            connection = joined.get(key)
            if connection is not None:
                return connection
        primary = routes.primary(key)
        router = routes.router
        if router is None:
            return primary
        if self._entitydb_flushing or writes(clause):
            self._entitydb_written.add(key)
            self._entitydb_reads[key] = primary  # read your own writes in this request
            return primary
        if self._entitydb_primary:
            return primary
        engine = self._entitydb_reads.get(key)
        if engine is None:
            engine = self._entitydb_reads[key] = router.read_engine(key, primary)
        return engine

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


@contextlib.contextmanager
def forced_primary(session: orm.scoped_session[Any]) -> Iterator[None]:
    """Send every statement of the current session of ``session`` to the primaries while
    the ``with`` block runs (``db.primary()``)."""
    current = session()
    previous = getattr(current, "_entitydb_primary", False)
    current._entitydb_primary = True
    try:
        yield
    finally:
        current._entitydb_primary = previous
