"""The migration lease: a committed row that says who migrates, for servers where a
session lock does not exclude other clients.

On a Galera cluster ``GET_LOCK`` is node-local, and ``SELECT ... FOR UPDATE`` does not
exclude a second node either (the other node commits, the first is aborted later). A row
inserted on a primary key is replicated and certified like any write, so exactly one
``INSERT`` wins however many nodes race for it. The row is the lease:

* ``name`` (the lock name, primary key), ``owner`` (host and process id, shown to
  waiters), ``token`` (random, this holder's), ``beat`` (a counter the holder increments).
* The holder renews it from a connection of its own (not the app's pool, which may hold a
  single connection) every :attr:`Lease.renew_every` seconds, while its revisions run.
* A waiter that sees the same ``(token, beat)`` for :attr:`Lease.seconds` of its *own*
  monotonic clock takes the lease over with ``UPDATE ... WHERE token = ? AND beat = ?``.
  No clocks are compared between machines, so clock skew between nodes cannot hand the
  lease to two holders; a holder that was killed (``kill -9``) is replaced after about
  :attr:`Lease.seconds`.
* The holder checks the lease (one synchronous renewal) after each revision, before it is
  committed, and stops with :class:`~flask_entitydb.errors.LockLostError` when it was lost.
* Before each statement that commits implicitly (MySQL/MariaDB DDL) the journal asks
  :meth:`Lease.fence` (one primary-key read), so a holder paused past its lease and resumed
  after a takeover commits nothing more.

The table (:data:`~flask_entitydb.migrations._locks.LEASE_TABLE`) is created on first use
and left out of autogenerate.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from flask_entitydb.errors import LockLostError
from flask_entitydb.migrations._locks import LEASE_TABLE
from flask_entitydb.migrations._locks.discard import discard, rollback_or_discard
from flask_entitydb.migrations._locks.locking import LockNotice, timeout_error
from flask_entitydb.migrations._server_facts import (
    MYSQL_DEADLOCK,
    MYSQL_LOCK_WAIT_TIMEOUT,
    POSTGRESQL_DEADLOCK_DETECTED,
    POSTGRESQL_SERIALIZATION_FAILURE,
    POSTGRESQL_UNIQUE_VIOLATION,
    error_code,
)

"""The table holding one lease row per lock name."""

DEFAULT_LEASE_SECONDS = 15.0
"""Seconds without renewal after which a waiter takes the lease over."""

_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {LEASE_TABLE} ("
    " name VARCHAR(64) NOT NULL PRIMARY KEY,"
    " owner VARCHAR(255) NOT NULL,"
    " token VARCHAR(32) NOT NULL,"
    " beat BIGINT NOT NULL,"
    " acquired_at TIMESTAMP NULL)"
)
_CONTENDED_MYSQL = {MYSQL_DEADLOCK, MYSQL_LOCK_WAIT_TIMEOUT}
"""MySQL error codes of a lost race: deadlock (Galera certification failure), lock wait."""
_CONTENDED_POSTGRESQL = {
    POSTGRESQL_SERIALIZATION_FAILURE,
    POSTGRESQL_DEADLOCK_DETECTED,
    POSTGRESQL_UNIQUE_VIOLATION,
}


def owner_label() -> str:
    """Who this process is, as waiters are told: ``host pid N``."""
    return f"{socket.gethostname()} pid {os.getpid()}"


def private_engine(engine: sa.Engine) -> sa.Engine:
    """An engine with a pool of its own but the same connection settings (TLS, connect
    arguments, connect listeners) as ``engine``: the lease connection must not take one of
    the app's pooled connections (``pool_size=1`` leaves none to spare)."""
    return sa.create_engine(engine.url, pool=engine.pool.recreate())


def _contended(error: sa.exc.DBAPIError) -> bool:
    if isinstance(error, sa.exc.IntegrityError):
        return True  # the row exists: someone holds the lease
    sqlstate = getattr(error.orig, "sqlstate", None)
    return error_code(error) in _CONTENDED_MYSQL or sqlstate in _CONTENDED_POSTGRESQL


class Lease:
    """One lease on the lock ``name`` in the database of ``engine``.

    :param seconds: how long a holder may go without renewing before a waiter takes over.
    :param galera: read with ``wsrep_sync_wait`` (causal reads across the cluster).
    """

    def __init__(
        self,
        engine: sa.Engine,
        name: str,
        *,
        seconds: float = DEFAULT_LEASE_SECONDS,
        galera: bool = False,
        notify: Callable[[LockNotice], None] | None = None,
    ) -> None:
        self.engine = private_engine(engine)
        self.name = name
        self.seconds = max(1.0, float(seconds))
        self.renew_every = self.seconds / 5
        self.galera = galera
        self.owner = owner_label()
        self.token = secrets.token_hex(16)
        self.taken_over_from: str | None = None
        self._notify = notify
        self._guard = threading.Lock()
        self._connection: sa.Connection | None = None
        self._last_renewal = 0.0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- connection --------------------------------------------------------------------

    def _conn(self) -> sa.Connection:
        if self._connection is not None and self._connection.invalidated:
            self._connection.close()
            self._connection = None
        if self._connection is None:
            connection = self.engine.connect()
            if self.galera:
                connection.exec_driver_sql("SET SESSION wsrep_sync_wait = 1")
                connection.commit()
            self._connection = connection
        return self._connection

    def _run(self, sql: str, **params: object) -> sa.CursorResult[object]:
        connection = self._conn()
        try:
            result = connection.execute(sa.text(sql), params)
            connection.commit()
        except BaseException:
            rollback_or_discard(connection)  # the statement's error, not the rollback's
            raise
        return result

    def _row(self) -> tuple[str, str, int] | None:
        connection = self._conn()
        try:
            row = connection.execute(
                sa.text(f"SELECT owner, token, beat FROM {LEASE_TABLE} WHERE name = :name"),
                {"name": self.name},
            ).first()
            connection.commit()
        except BaseException:
            rollback_or_discard(connection)
            raise
        return None if row is None else (str(row[0]), str(row[1]), int(row[2]))

    # -- taking it ---------------------------------------------------------------------

    def acquire(self, timeout: float, keepalive: Callable[[], None] | None = None) -> None:
        """Take the lease, waiting up to ``timeout`` seconds; ``keepalive`` runs at every
        poll (it keeps the idle migration connection from being dropped meanwhile).

        :raises LockTimeoutError: another holder renewed it for the whole ``timeout``.
        """
        self._create_table()
        deadline = time.monotonic() + timeout
        seen: tuple[str, int] | None = None
        seen_since = time.monotonic()
        told = False
        while True:
            if self._try_insert():
                break
            row = self._row()
            if row is not None:
                owner, token, beat = row
                now = time.monotonic()
                if seen != (token, beat):
                    seen, seen_since = (token, beat), now
                elif now - seen_since >= self.seconds and self._try_take_over(token, beat):
                    self.taken_over_from = owner
                    break
                if not told and self._notify is not None:
                    told = True
                    self._notify(
                        LockNotice(
                            "waiting",
                            f"Waiting up to {timeout:g} s for the migration lease"
                            f" '{self.name}': held by '{owner}' (a lease not renewed for"
                            f" {self.seconds:g} s is taken over).",
                        )
                    )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timeout_error(self.name, timeout)
            if keepalive is not None:
                keepalive()
            time.sleep(min(max(self.renew_every / 4, 0.05), remaining, 0.5))
        self._last_renewal = time.monotonic()
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"lease {self.name}", daemon=True
        )
        self._thread.start()

    def _create_table(self) -> None:
        try:
            self._run(_CREATE)
        except sa.exc.DBAPIError:
            # PostgreSQL: two concurrent CREATE TABLE IF NOT EXISTS, one fails on pg_type's
            # unique index; the table is there now (else this raises)
            self._run(f"SELECT 1 FROM {LEASE_TABLE} WHERE 1 = 0")

    def _try_insert(self) -> bool:
        try:
            self._run(
                f"INSERT INTO {LEASE_TABLE} (name, owner, token, beat, acquired_at)"
                " VALUES (:name, :owner, :token, 0, CURRENT_TIMESTAMP)",
                name=self.name,
                owner=self.owner,
                token=self.token,
            )
        except sa.exc.DBAPIError as error:
            if _contended(error):
                return False
            raise
        return True

    def _try_take_over(self, token: str, beat: int) -> bool:
        try:
            result = self._run(
                f"UPDATE {LEASE_TABLE} SET owner = :owner, token = :mine, beat = 0,"
                " acquired_at = CURRENT_TIMESTAMP"
                " WHERE name = :name AND token = :token AND beat = :beat",
                owner=self.owner,
                mine=self.token,
                name=self.name,
                token=token,
                beat=beat,
            )
        except sa.exc.DBAPIError as error:
            if _contended(error):
                return False
            raise
        return result.rowcount == 1

    # -- holding it --------------------------------------------------------------------

    def _renew(self) -> None:
        """One renewal; sets :attr:`_lost` when the row is no longer ours."""
        with self._guard:
            if self._lost is not None:
                return
            try:
                result = self._run(
                    f"UPDATE {LEASE_TABLE} SET beat = beat + 1"
                    " WHERE name = :name AND token = :token",
                    name=self.name,
                    token=self.token,
                )
            except sa.exc.DBAPIError as error:
                if time.monotonic() - self._last_renewal >= self.seconds * 0.8:
                    self._lost = f"it could not be renewed for {self.seconds * 0.8:g} s: {error}"
                return
            if result.rowcount != 1:
                row = self._row()
                holder = f"'{row[0]}'" if row is not None else "nobody (the row was deleted)"
                self._lost = f"it is now held by {holder}"
                return
            self._last_renewal = time.monotonic()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                self._renew()
            except Exception as error:  # never die silently: check() reports it
                with self._guard:
                    self._lost = self._lost or f"renewing failed: {error}"

    def check(self) -> None:
        """Renew now and raise when the lease was lost (before a revision is committed).

        :raises LockLostError: the lease is no longer this process's.
        """
        self._renew()
        if self._lost is None and time.monotonic() - self._last_renewal >= self.seconds * 0.8:
            self._lost = f"it was not renewed for {self.seconds * 0.8:g} s"
        if self._lost is not None:
            raise LockLostError(
                f"The migration lease '{self.name}' was lost ({self._lost}); stopped before"
                " the next revision: check 'flask db current', then run 'flask db upgrade'"
                " again."
            )

    def fence(self) -> str | None:
        """Why the lease is no longer this process's, or ``None`` while it is: asked
        before each statement that commits implicitly. One primary-key read (with
        ``wsrep_sync_wait`` on Galera); a synchronous renewal only when the last one is
        older than half the lease (after a pause, say), so a waiter cannot take it over
        while the statement runs."""
        stale = False
        with self._guard:  # the renewing thread uses the same connection
            if self._lost is None:
                row = self._row()
                if row is None or row[1] != self.token:
                    holder = f"'{row[0]}'" if row is not None else "nobody (the row was deleted)"
                    self._lost = f"it is now held by {holder}"
                else:
                    stale = time.monotonic() - self._last_renewal >= self.seconds / 2
        if stale:
            self._renew()
        return self._lost

    def lost_reason(self) -> str | None:
        """Why the lease was lost, if it was (one renewal; asked after a failure)."""
        self._renew()
        return self._lost

    def release(self) -> None:
        """Stop renewing and delete the row if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.seconds)
        try:
            with self._guard:
                if self._lost is None:
                    self._run(
                        f"DELETE FROM {LEASE_TABLE} WHERE name = :name AND token = :token",
                        name=self.name,
                        token=self.token,
                    )
        except sa.exc.DBAPIError:
            pass  # it expires on its own; waiters take it over
        finally:
            if self._connection is not None:
                # closed without a reset: its pool is disposed next, and on a node that
                # has left the cluster the reset would fail (and be logged)
                discard(self._connection)
                self._connection.close()
            self.engine.dispose()


__all__ = ["DEFAULT_LEASE_SECONDS", "LEASE_TABLE", "Lease", "owner_label", "private_engine"]
