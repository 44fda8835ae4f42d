"""The lock a migration run holds, chosen for the database it runs on.

``run_migrations()`` (env.py) takes it for every ``upgrade``, ``downgrade`` and ``stamp``
that reaches it, whoever called Alembic (``flask db``, the Python API, Alembic's own
``command.upgrade()`` or its command line). It is always held by the *migrating
connection* or by the migration transaction, never by a second connection that sits idle
while the revisions run (a server drops idle connections: ``wait_timeout``,
``idle_session_timeout``, ``KILL``, and with them their locks).

=========================  ==========================================================
Database                   Lock
=========================  ==========================================================
SQLite                     ``flock`` on ``<database>.migration-lock``
MySQL / MariaDB            ``GET_LOCK`` on the migrating connection
MariaDB Galera cluster     a lease row (:mod:`.lease`):
                           ``GET_LOCK`` is node-local there
PostgreSQL (also behind    ``pg_try_advisory_xact_lock`` in the migration transaction:
PgBouncer)                 a transaction keeps its server connection under every
                           PgBouncer pooling mode, a session lock does not
``ENTITYDB_MIGRATION_LOCK  the lease, on MySQL, MariaDB and PostgreSQL
= "lease"``
=========================  ==========================================================

After each revision, before its version-table update is committed, :meth:`RunLock.check`
verifies the lock is still held (``IS_USED_LOCK() = CONNECTION_ID()``, the lease's
renewal); a lost lock stops the run with :class:`~flask_entitydb.errors.LockLostError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from flask_entitydb.errors import LockLostError, MigrationError
from flask_entitydb.migrations._locks.lease import LEASE_TABLE, Lease
from flask_entitydb.migrations._locks.locking import (
    LockNotice,
    Notify,
    lock_name,
    migration_lock,
    postgresql_lock_key,
    postgresql_wait,
    sqlite_lock_file,
)


def _rows(connection: sa.Connection, sql: str) -> list[tuple[Any, ...]]:
    was_in_transaction = connection.in_transaction()
    rows = [tuple(row) for row in connection.exec_driver_sql(sql)]
    if not was_in_transaction:
        connection.commit()
    return rows


def galera_status(connection: sa.Connection) -> tuple[int, str] | None:
    """``(cluster size, wsrep_OSU_method)`` when ``connection`` is to a Galera node with
    replication on, else ``None``."""
    on = dict(_rows(connection, "SHOW VARIABLES LIKE 'wsrep_on'"))
    if str(on.get("wsrep_on", "OFF")).upper() != "ON":
        return None
    size = dict(_rows(connection, "SHOW STATUS LIKE 'wsrep_cluster_size'"))
    method = _rows(connection, "SELECT @@SESSION.wsrep_OSU_method")[0][0]
    return int(size.get("wsrep_cluster_size") or 0), str(method)


def require_toi(connection: sa.Connection) -> None:
    """Refuse to migrate a Galera node whose schema changes are not replicated in total
    order (``wsrep_OSU_method`` other than ``TOI``)."""
    status = galera_status(connection)
    if status is not None and status[1].upper() != "TOI":
        raise MigrationError(
            f"The Galera node applies schema changes with wsrep_OSU_method={status[1]}, on"
            " this node only, so the other nodes would not get the revisions; set it to"
            " TOI ('SET GLOBAL wsrep_OSU_method=TOI', or remove it from the server's"
            " configuration) and run the command again."
        )


class RunLock:
    """The lock of one migration run; :meth:`check` is an Alembic ``on_version_apply``
    hook."""

    description = ""
    """Which lock, and why (``flask db upgrade -v``)."""

    def check(self, **_: Any) -> None:
        """Verify the lock is still held; raise :class:`LockLostError` when it is not."""

    def begin_transaction(self, read_heads: Callable[[], set[str]]) -> None:
        """Called inside the migration transaction, before ``run_migrations()``."""


class _SQLiteLock(RunLock):
    def __init__(self, path: str) -> None:
        where = f"'{path}'" if path else "this process (in-memory database)"
        self.description = f"file lock on {where} (SQLite)"


class _MySQLSessionLock(RunLock):
    def __init__(self, connection: sa.Connection, name: str) -> None:
        self.connection = connection
        self.name = name
        self.description = (
            f"GET_LOCK('{name}') on the connection that runs the revisions (a single"
            " MySQL/MariaDB server: its session locks exclude every client)"
        )

    def check(self, **_: Any) -> None:
        try:
            ours = self.connection.execute(
                sa.text("SELECT IS_USED_LOCK(:name) = CONNECTION_ID()"), {"name": self.name}
            ).scalar()
        except sa.exc.DBAPIError as error:
            raise _lost(self.name, f"its connection failed: {error.orig}") from error
        if ours != 1:
            raise _lost(self.name, "the server released it")


class _LeaseLock(RunLock):
    def __init__(self, lease: Lease, connection: sa.Connection, why: str) -> None:
        self.lease = lease
        self.connection = connection
        self.description = (
            f"lease row '{lease.name}' in the table '{LEASE_TABLE}' ({why}); renewed every"
            f" {lease.renew_every:g} s, taken over after {lease.seconds:g} s without renewal"
        )

    def check(self, **_: Any) -> None:
        self.lease.check()
        if self.lease.galera:
            require_toi(self.connection)


class _PostgreSQLTransactionLock(RunLock):
    def __init__(
        self, connection: sa.Connection, name: str, timeout: float, notify: Notify | None
    ) -> None:
        self.connection = connection
        self.name = name
        self.timeout = timeout
        self.notify = notify
        self.locked = False  # in the current transaction
        self.transactions = 0
        self.heads: set[str] | None = None
        self.read_heads: Callable[[], set[str]] | None = None
        key = postgresql_lock_key(name)
        self.description = (
            f"pg_advisory_xact_lock({key}) ('{name}') in the migration transaction"
            " (PostgreSQL: held by the transaction that runs the revisions, so it also holds"
            " behind PgBouncer in transaction pooling mode)"
        )

    def _lock(self, connection: sa.Connection) -> None:
        # READ COMMITTED, so the version table read after waiting shows the other run's
        # commit; it must be the transaction's first statement.
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")

        def attempt(sql: str, key: int) -> object:
            return connection.execute(sa.text(sql), {"key": key}).scalar()

        postgresql_wait(
            connection,
            self.name,
            self.timeout,
            self.notify,
            function="pg_try_advisory_xact_lock",
            run=attempt,
        )
        self.locked = True
        self.transactions += 1
        if self.transactions == 1:
            _taken(self.notify, self)
        if self.transactions > 1 and self.heads is not None and self.read_heads is not None:
            # the run committed mid-way (transaction_per_migration, autocommit_block()):
            # nobody else may have migrated while no lock was held
            found = self.read_heads()
            if found != self.heads:
                raise _lost(
                    self.name,
                    f"another run moved the database to {sorted(found)} while a revision"
                    " committed outside the migration transaction",
                )

    def on_begin(self, connection: sa.Connection) -> None:
        self._lock(connection)

    def on_end(self, connection: sa.Connection) -> None:
        self.locked = False

    def begin_transaction(self, read_heads: Callable[[], set[str]]) -> None:
        self.read_heads = read_heads
        if not self.locked and self.connection.in_transaction():
            self._lock(self.connection)

    def check(self, *, heads: set[str] | None = None, **_: Any) -> None:
        if heads is not None:
            self.heads = set(heads)
        if not self.locked:
            raise _lost(self.name, "the migration transaction ended")


def _lost(name: str, why: str) -> LockLostError:
    return LockLostError(
        f"The migration lock '{name}' was lost ({why}); stopped before the next revision:"
        " check 'flask db current', then run the command again."
    )


@contextlib.contextmanager
def run_lock(
    connection: sa.Connection,
    *,
    timeout: float,
    mode: str = "auto",
    lease_seconds: float = 15.0,
    notify: Notify | None = None,
) -> Iterator[RunLock]:
    """Take the migration lock for a run on ``connection`` (the one Alembic migrates
    with) and hold it while the block runs.

    :param mode: ``"auto"`` (the table in the module docstring) or ``"lease"``.
    :raises LockTimeoutError: not taken within ``timeout`` seconds.
    :raises MigrationError: a Galera node with ``wsrep_OSU_method`` other than TOI.
    """
    name = lock_name(connection)
    backend = connection.dialect.name
    lock: RunLock
    if backend == "sqlite":
        path = _sqlite_path(connection)
        lock = _SQLiteLock(sqlite_lock_file(path, name) if path else "")
        with migration_lock(connection, timeout=timeout, name=name, notify=notify):
            _taken(notify, lock)
            yield lock
        return
    galera = galera_status(connection) if backend in {"mysql", "mariadb"} else None
    if galera is not None:
        require_toi(connection)
    if galera is not None or mode == "lease":
        why = (
            f"Galera cluster of {galera[0]} node(s): GET_LOCK holds on one node only"
            if galera is not None
            else "ENTITYDB_MIGRATION_LOCK = 'lease'"
        )
        lease = Lease(
            connection.engine, name, seconds=lease_seconds, galera=galera is not None, notify=notify
        )

        def keepalive() -> None:
            _rows(connection, "SELECT 1")

        try:
            lease.acquire(timeout, keepalive)
            lock = _LeaseLock(lease, connection, why)
            if lease.taken_over_from is not None:
                lock.description += f"; taken over from '{lease.taken_over_from}'"
            _taken(notify, lock)
            yield lock
        finally:
            lease.release()
        return
    if backend == "postgresql":
        pg = _PostgreSQLTransactionLock(connection, name, timeout, notify)
        pg.description += _pooler_hint(connection)
        sa.event.listen(connection, "begin", pg.on_begin)
        sa.event.listen(connection, "commit", pg.on_end)
        sa.event.listen(connection, "rollback", pg.on_end)
        try:
            yield pg
        finally:
            sa.event.remove(connection, "begin", pg.on_begin)
            sa.event.remove(connection, "commit", pg.on_end)
            sa.event.remove(connection, "rollback", pg.on_end)
        return
    with migration_lock(connection, timeout=timeout, name=name, notify=notify):
        lock = _MySQLSessionLock(connection, name)
        _taken(notify, lock)
        yield lock


def _pooler_hint(connection: sa.Connection) -> str:
    """Say so when the server listens on another port than the URL names: a pooler such
    as PgBouncer (or a port mapping) is in between."""
    listening = _rows(connection, "SELECT inet_server_port()")[0][0]
    named = connection.engine.url.port or 5432
    if listening is None or int(listening) == named:
        return ""
    return (
        f"; the server listens on port {listening} but the URL names {named}: a pooler"
        " such as PgBouncer is probably in between, which this lock allows for"
    )


def _taken(notify: Notify | None, lock: RunLock) -> None:
    if notify is not None:
        notify(LockNotice("taken", f"Migration lock: {lock.description}."))


def _sqlite_path(connection: sa.Connection) -> str:
    for row in _rows(connection, "PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2] or "")
    return ""
