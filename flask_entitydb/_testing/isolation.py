"""Per-test isolation (``entitydb_transaction``): the test runs in an outer transaction on
one connection that every session joins through a SAVEPOINT, rolled back afterwards."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from flask_entitydb._testing.counters import restore, snapshot
from flask_entitydb._testing.database import EntityDBTestDatabase, bind_engines
from flask_entitydb._testing.failures import exit_unreachable

if TYPE_CHECKING:
    import sqlalchemy as sa
    from flask import Flask
    from sqlalchemy import orm

    from flask_entitydb.extension import EntityDB


@dataclass(frozen=True)
class EntityDBTransaction:
    """What ``entitydb_transaction`` yields."""

    db: EntityDB
    """The app's :class:`~flask_entitydb.EntityDB` instance."""
    connection: sa.Connection
    """The connection holding the outer transaction; ``db.session`` runs on it, and so
    can raw SQL that must see the test's rows."""
    bind_connections: Mapping[str, sa.Connection] = field(default_factory=dict)
    """The same for each other bind: its key -> the connection to its test database."""

    @property
    def session(self) -> orm.scoped_session[Any]:
        """``db.session``, bound to :attr:`connection`."""
        return self.db.session


@contextmanager
def isolated(app: Flask, database: EntityDBTestDatabase) -> Iterator[EntityDBTransaction]:
    """Bind ``app``'s ``db.session`` to one connection of ``database`` whose outer
    transaction is rolled back when the block ends (see ``entitydb_transaction``)."""
    from flask import current_app

    state = database.prepare(app)
    db = cast("EntityDB", state.db)
    factory = db.session.session_factory
    with ExitStack() as stack:
        if not current_app or current_app._get_current_object() is not app:  # type: ignore[attr-defined]
            stack.enter_context(app.app_context())
        connection = _begin(database, db.engine, stack)
        # every other bind joins the test's transaction on a connection to its test database
        joined = {
            key: _begin(database.binds[key], engine, stack)
            for key, engine in bind_engines(state).items()
        }

        saved_kw = dict(factory.kw)
        db.session.remove()
        stack.callback(_restore_factory, factory, saved_kw)
        stack.callback(db.session.remove)
        # EntitySession takes a Connection bind in place of the app's engine
        # and routes the other binds' statements to their connections (joined_binds)
        extra = {"joined_binds": joined} if joined else {}
        factory.configure(bind=connection, join_transaction_mode="create_savepoint", **extra)
        stack.enter_context(_session_per_request(app, db))
        yield EntityDBTransaction(db=db, connection=connection, bind_connections=joined)


def _begin(database: EntityDBTestDatabase, engine: sa.Engine, stack: ExitStack) -> sa.Connection:
    """A connection to ``database`` in an outer transaction, rolled back and closed when
    ``stack`` unwinds."""
    import sqlalchemy as sa

    try:
        connection = database.connect(engine)
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        exit_unreachable(database.url, exc, database.worker)
    stack.callback(connection.close)
    # numbers drawn by the previous test (sequences, AUTO_INCREMENT) are not rolled back
    if database.counters is None:
        database.counters = snapshot(connection)
    else:
        restore(connection, database.counters)
    if connection.dialect.name == "sqlite" and connection.dialect.driver == "pysqlite":
        _begin_sqlite_transaction(connection, stack)
    else:
        connection.begin()
    stack.callback(_rollback, connection)
    return connection


def _begin_sqlite_transaction(connection: sa.Connection, stack: ExitStack) -> None:
    """Make SAVEPOINTs part of the outer transaction on pysqlite.

    In its legacy transaction control (the only one before Python 3.12, the default until
    3.16) sqlite3 emits no BEGIN before a SAVEPOINT, so releasing the session's savepoint
    would commit for good. SQLAlchemy's documented workaround: turn the driver's own
    transaction handling off and emit BEGIN ourselves, on this connection only.
    """
    driver = connection.connection.driver_connection
    legacy = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", -1)
    if getattr(driver, "autocommit", legacy) != legacy:
        connection.begin()  # modern autocommit=False mode: already correct
        return
    saved = driver.isolation_level  # type: ignore[union-attr]
    driver.isolation_level = None  # type: ignore[union-attr]
    stack.callback(setattr, driver, "isolation_level", saved)
    connection.begin()
    connection.exec_driver_sql("BEGIN")


@contextmanager
def _session_per_request(app: Flask, db: EntityDB) -> Iterator[None]:
    """Give every request of ``app`` its own session, closed when the request ends.

    In production each request pushes its own app context, so it gets a new session that
    Flask-SQLAlchemy closes at the end of the request. A request of the test client reuses
    the app context of the test instead (pytest-flask's, or the one this plugin pushed),
    and so would share the test's session: a view that flushes without committing would
    seem to work. So, while a request runs, the test's session is set aside in the scoped
    session's registry; the request's own session joins the test's transaction with its
    own SAVEPOINT, and closing it rolls back whatever the view did not commit.
    """
    from flask import request_started, request_tearing_down

    from flask_entitydb._compat.sqlalchemy import scoped_registry

    registry = scoped_registry(db.session)
    set_aside: list[Any] = []

    def started(sender: Flask, **extra: Any) -> None:
        set_aside.append(registry() if registry.has() else None)
        registry.clear()

    def tearing_down(sender: Flask, **extra: Any) -> None:
        db.session.remove()  # the request's session: rolls back what it did not commit
        outer = set_aside.pop() if set_aside else None
        if outer is not None:
            registry.set(outer)

    request_started.connect(started, app, weak=False)
    request_tearing_down.connect(tearing_down, app, weak=False)
    try:
        yield
    finally:
        request_started.disconnect(started, app)
        request_tearing_down.disconnect(tearing_down, app)


def _rollback(connection: sa.Connection) -> None:
    transaction = connection.get_transaction()
    if transaction is not None and transaction.is_active:
        transaction.rollback()


def _restore_factory(factory: orm.sessionmaker[Any], kw: dict[str, Any]) -> None:
    factory.kw.clear()
    factory.kw.update(kw)
