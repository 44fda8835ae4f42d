"""Healthy pooled connections without a round trip: reconnect and retry the first statement.

``ENTITYDB_LIVENESS`` chooses how a pooled MySQL/MariaDB or PostgreSQL connection that the
server has closed (``KILL``, ``wait_timeout``, a restart, a reset TLS session) is kept away
from the application:

``"retry"`` (the default)
    Nothing is sent when a connection is checked out. When the *first* statement sent on a
    checked-out connection fails with a disconnect error, that connection is closed, the
    pool's connections older than it are replaced at their next checkout, a new connection
    is made (with the same per-connection checks, such as the TLS check) and the statement
    runs once more on it. Only a statement that opens the transaction is ever sent twice,
    and only when the database rolls back whatever the lost connection had done: never in
    autocommit mode, never DDL, never a COMMIT, never a statement after another one.
    Optionally, a connection idle for longer than ``ENTITYDB_LIVENESS_PING_IDLE`` seconds
    is pinged when it is checked out.
``"ping"``
    SQLAlchemy's ``pool_pre_ping``: one extra round trip on every checkout.
``"none"``
    Neither: the first statement on a dead connection fails, as in plain SQLAlchemy.

Built on SQLAlchemy's documented events: the pool's ``connect`` and ``checkout`` events
(raising :class:`~sqlalchemy.exc.DisconnectionError` in ``checkout`` makes the pool replace
a connection) and the dialect's ``do_execute`` events, the hook SQLAlchemy's FAQ uses for
retrying statements. It is installed on each engine, so sessions, the CLI, ``flask db``,
the pytest plugin and every bind share it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor, ExecuteStyle
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from flask_entitydb._settings.liveness import DEFAULT_PING_IDLE, SERVER_BACKENDS, LivenessPolicy
from flask_entitydb._settings.masking import mask_text, mask_url

log = logging.getLogger("flask_entitydb")

# keys in ConnectionPoolEntry.info (cleared by SQLAlchemy whenever it reconnects an entry)
_FIRST = "flask_entitydb.liveness.first"
"""Set at checkout to the entry itself; popped by the first statement sent after it."""
_BORN = "flask_entitydb.liveness.born"
"""time.monotonic() when the DBAPI connection was made."""
_USED = "flask_entitydb.liveness.used"
"""time.monotonic() of the connection's last checkout."""


_MYSQL_TLS_ERROR = 2026
"""CR_SSL_CONNECTION_ERROR: on an established connection, its TLS session was cut (for
example ``TLS/SSL error: unexpected eof while reading`` after the server closed it);
SQLAlchemy's MySQL dialects do not count it as a disconnect."""


_CONNECTOR_LOST = "MySQL Connection not available"
"""mysql-connector's message when its cursor() finds the connection gone; SQLAlchemy's
dialect expects it with a final full stop, which the pure-Python connection leaves out."""


def _mysql_lost(error: BaseException) -> bool:
    return _mysql_code(error) == _MYSQL_TLS_ERROR or str(error).startswith(_CONNECTOR_LOST)


def is_disconnect(
    dialect: sa.Dialect, error: BaseException, dbapi_connection: Any, cursor: Any
) -> bool:
    """SQLAlchemy's ``dialect.is_disconnect()``, plus a MySQL connection whose TLS session
    was cut, and mysql-connector's lost connection in every wording."""
    if dialect.is_disconnect(error, dbapi_connection, cursor):  # type: ignore[arg-type]
        return True
    return dialect.name in {"mysql", "mariadb"} and _mysql_lost(error)


def _mysql_code(error: BaseException) -> object:
    args = getattr(error, "args", ())
    return args[0] if args else None


def _mark_tls_disconnect(context: sa.engine.ExceptionContext) -> None:
    """``handle_error`` listener: a cut TLS session (or mysql-connector's lost connection
    without its full stop) is a lost connection, so SQLAlchemy discards the connection and
    the pool's older ones (as SQLAlchemy's docs show for new disconnect error codes)."""
    if not context.is_disconnect and _mysql_lost(context.original_exception):
        context.is_disconnect = True


def liveness_engine_options(policy: LivenessPolicy, url: URL) -> dict[str, Any]:
    """The engine option defaults of ``policy``: ``pool_pre_ping`` for ``"ping"``,
    none otherwise (``"retry"`` needs no option, see :func:`install_liveness`)."""
    if policy == "ping" and url.get_backend_name() in SERVER_BACKENDS:
        return {"pool_pre_ping": True}
    return {}


def install_liveness(
    engine: sa.Engine, policy: LivenessPolicy, ping_idle: float | None = DEFAULT_PING_IDLE
) -> None:
    """Apply ``policy`` to ``engine`` (call once per engine, binds and replicas included).

    Only ``"retry"`` needs listeners: ``"ping"`` is the ``pool_pre_ping`` engine option of
    :func:`liveness_engine_options`, ``"none"`` is nothing.
    """
    backend = engine.url.get_backend_name()
    if backend in {"mysql", "mariadb"}:
        # first, so that the logging listener sees the lost connection too
        sa.event.listen(engine, "handle_error", _mark_tls_disconnect, insert=True)
    if policy != "retry" or backend not in SERVER_BACKENDS:
        return
    _Retry(engine, ping_idle).listen()


class _Retry:
    """The ``"retry"`` policy of one engine."""

    def __init__(self, engine: sa.Engine, ping_idle: float | None) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.ping_idle = ping_idle
        self.stale_before = 0.0
        """Connections made before this time.monotonic() are replaced at checkout: set
        when a lost connection is found, as the server that lost it probably lost all."""

    def listen(self) -> None:
        if self.engine.url.get_driver_name() == "mysqlconnector":
            # mysql-connector pings in cursor() and raises there, before do_execute
            retry_cursor(self.dialect, self)
        sa.event.listen(self.engine, "connect", self.on_connect)
        sa.event.listen(self.engine, "checkout", self.on_checkout)
        sa.event.listen(self.engine, "do_execute", self.do_execute)
        sa.event.listen(self.engine, "do_execute_no_params", self.do_execute_no_params)
        sa.event.listen(self.engine, "do_executemany", self.do_executemany)

    # -- pool events ---------------------------------------------------------------------

    def on_connect(self, dbapi_connection: DBAPIConnection, entry: ConnectionPoolEntry) -> None:
        entry.info[_BORN] = time.monotonic()

    def on_checkout(
        self,
        dbapi_connection: DBAPIConnection,
        entry: ConnectionPoolEntry,
        proxy: PoolProxiedConnection,
    ) -> None:
        info = entry.info
        if info.get(_BORN, 0.0) < self.stale_before:
            # the pool makes a new connection for this entry and calls us again
            raise sa.exc.DisconnectionError("made before a connection of this pool was lost")
        if self.ping_idle is not None:
            now = time.monotonic()
            used = info.get(_USED)
            info[_USED] = now
            if used is not None and now - used > self.ping_idle:
                self._ping(dbapi_connection)
        info[_FIRST] = entry

    def _ping(self, dbapi_connection: DBAPIConnection) -> None:
        try:
            alive = self.dialect.do_ping(dbapi_connection)
        except self.dialect.loaded_dbapi.Error as error:
            if not is_disconnect(self.dialect, error, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            self.stale_before = time.monotonic()
            raise sa.exc.DisconnectionError("idle connection did not answer a ping")

    # -- dialect events ------------------------------------------------------------------

    def do_execute(
        self, cursor: DBAPICursor, statement: str, parameters: Any, context: Any
    ) -> bool:
        if context.execute_style is ExecuteStyle.INSERTMANYVALUES:
            # SQLAlchemy reads the batches' rows from its own reference to the cursor,
            # which a retry could not replace: such a first statement is never retried
            self._first_entry(context)
            return False
        return self._run(self.dialect.do_execute, cursor, statement, (parameters,), context)

    def do_execute_no_params(self, cursor: DBAPICursor, statement: str, context: Any) -> bool:
        return self._run(self.dialect.do_execute_no_params, cursor, statement, (), context)

    def do_executemany(
        self, cursor: DBAPICursor, statement: str, parameters: Any, context: Any
    ) -> bool:
        return self._run(self.dialect.do_executemany, cursor, statement, (parameters,), context)

    @staticmethod
    def _first_entry(context: Any) -> ConnectionPoolEntry | None:
        """The pool entry when this is the first statement since its checkout."""
        connection: sa.Connection = context.root_connection
        try:
            info = connection.connection.info
        except NotImplementedError:
            return None  # the dialect's first-connect queries, on a connection not pooled yet
        entry: ConnectionPoolEntry | None = info.pop(_FIRST, None)
        return entry

    def _run(
        self,
        execute: Callable[..., Any],
        cursor: DBAPICursor,
        statement: str,
        parameters: tuple[Any, ...],
        context: Any,
    ) -> bool:
        entry = self._first_entry(context)
        if entry is None:
            return False  # not the first statement: SQLAlchemy runs it as usual
        try:
            execute(cursor, statement, *parameters, context)
        except self.dialect.loaded_dbapi.Error as error:
            if not self._may_retry(error, entry, cursor, context):
                raise
            try:
                cursor = self._reconnect(entry, error, context)
            except self.dialect.loaded_dbapi.Error as reconnect_error:
                log.info(
                    "Could not reconnect to the database '%s' after a lost connection: %s",
                    mask_url(self.engine.url),
                    mask_text(str(reconnect_error)),
                )
                # SQLAlchemy then handles the lost connection as it would without us
                raise error from reconnect_error
            except BaseException:
                # a check of the new connection refused it (such as the TLS check)
                context.root_connection.invalidate(error)
                raise
            execute(cursor, statement, *parameters, context)
        return True

    def cursor_failed(self, error: Exception, context: Any) -> Any:
        """A cursor for ``context`` on a new connection, after the driver found the
        connection lost when making one (nothing was sent: it may always be retried when
        it was the first statement since checkout); raises ``error`` otherwise."""
        entry = self._first_entry(context)
        dbapi_connection = entry.dbapi_connection if entry is not None else None
        if (
            entry is None
            or dbapi_connection is None
            or not is_disconnect(self.dialect, error, dbapi_connection, None)
            or self._has_characteristics(context)
        ):
            raise error
        return self._reconnect(entry, error, context)

    def _has_characteristics(self, context: Any) -> bool:
        """Whether the connection was given an isolation level, read-only...: set on the
        lost connection, not on a new one."""
        connection: sa.Connection = context.root_connection
        options = connection.get_execution_options()
        characteristics = getattr(self.dialect, "connection_characteristics", {})
        return any(name in options for name in characteristics)

    def _may_retry(
        self, error: Exception, entry: ConnectionPoolEntry, cursor: DBAPICursor, context: Any
    ) -> bool:
        """Whether sending the failed first statement again cannot repeat anything."""
        dialect = self.dialect
        dbapi_connection = entry.dbapi_connection
        if dbapi_connection is None or not is_disconnect(dialect, error, dbapi_connection, cursor):
            return False
        if context.isddl:
            return False  # MySQL commits DDL as it runs it
        if self._has_characteristics(context):
            return False
        try:
            # each statement commits itself in autocommit mode: it may have been applied
            return not dialect.detect_autocommit_setting(dbapi_connection)
        except NotImplementedError:
            return False

    def _reconnect(self, entry: ConnectionPoolEntry, error: Exception, context: Any) -> Any:
        """Replace the lost DBAPI connection under the checked-out connection, the same
        way SQLAlchemy's pool replaces one at checkout, and return a cursor on it."""
        self.stale_before = time.monotonic()
        entry.invalidate(error)  # closes it; the pool's "invalidate" event fires
        proxy: PoolProxiedConnection = context.root_connection.connection
        # get_connection() makes the new connection and runs the "connect" events
        proxy.dbapi_connection = entry.get_connection()  # type: ignore[attr-defined,misc]
        log.info(
            "Reconnected to the database '%s' and sent the first statement again: the"
            " pooled connection had been closed (%s)",
            mask_url(self.engine.url),
            mask_text(str(error)),
        )
        cursor = context.create_cursor()
        context.cursor = cursor
        return cursor


def retry_cursor(dialect: sa.Dialect, retry: _Retry) -> None:
    """Make ``dialect``'s execution contexts (of one engine: the dialect is its own)
    replace a lost connection found while making the cursor of the first statement since
    checkout, through the dialect's documented ``execution_ctx_cls`` and the context's
    ``create_cursor()``."""
    base = dialect.execution_ctx_cls
    errors = dialect.loaded_dbapi.Error

    class RetryingContext(base):  # type: ignore[valid-type,misc]
        def create_cursor(self) -> Any:
            try:
                return super().create_cursor()
            except errors as error:
                return retry.cursor_failed(error, self)

    dialect.execution_ctx_cls = RetryingContext
