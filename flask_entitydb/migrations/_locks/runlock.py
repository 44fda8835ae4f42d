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
SQLite                     ``flock`` on a lock file in the temporary folder
MySQL / MariaDB            ``GET_LOCK`` on the migrating connection
MariaDB Galera cluster     a lease row (:mod:`.lease`):
                           ``GET_LOCK`` is node-local there
PostgreSQL                 ``pg_try_advisory_lock`` (a session lock) on the migrating
                           connection: held across ``autocommit_block()``; waiters
                           poll outside any transaction
PostgreSQL behind a        the lease: a session lock would land on whichever server
pooler (PgBouncer)         connection the pooler lends (seen as a server port other
                           than the URL's)
``ENTITYDB_MIGRATION_LOCK  the lease, on MySQL, MariaDB and PostgreSQL
= "lease"``
=========================  ==========================================================

After each revision, before its version-table update is committed, :meth:`RunLock.check`
verifies the lock is still held (``IS_USED_LOCK() = CONNECTION_ID()``, the lease's
renewal, ``pg_locks`` of the session); a lost lock stops the run with
:class:`~flask_entitydb.errors.LockLostError`. On MySQL/MariaDB the condition rides on the
journal's ``applied`` update (:meth:`RunLock.held_condition`): one statement, not two.
Under every lock the migration journal (:mod:`.._journal`) is the last fence: a
revision's row is inserted before it runs (MySQL/MariaDB: before its first statement), on
a primary key only one run can take.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from flask_entitydb.errors import LockLostError, MigrationError
from flask_entitydb.migrations._locks import LEASE_TABLE
from flask_entitydb.migrations._locks.lease import Lease
from flask_entitydb.migrations._locks.locking import (
    LockNotice,
    Notify,
    lock_name,
    migration_lock,
    postgresql_lock_key,
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

    galera = False
    """Whether the run is on a Galera cluster (read with ``wsrep_sync_wait``)."""

    def lost(self) -> str | None:
        """Why the lock was lost, if it was (asked after a revision failed)."""
        return None

    def fence(self) -> str | None:
        """Why the lock was lost, if it was: asked before each statement that commits
        implicitly (MySQL/MariaDB DDL), so a run that lost it commits nothing more. A
        session lock cannot be lost without its connection, which the statement needs."""
        return None

    def held_condition(self) -> sa.ColumnElement[bool] | None:
        """An SQL condition true only on the migrating connection while it holds the
        lock, for a statement that runs there anyway (the journal's ``applied`` update):
        when that statement matched its row, :meth:`check` need not ask again."""
        return None


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

    def held_condition(self) -> sa.ColumnElement[bool] | None:
        return sa.func.IS_USED_LOCK(self.name) == sa.func.CONNECTION_ID()

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
        self.galera = lease.galera
        self.description = (
            f"lease row '{lease.name}' in the table '{LEASE_TABLE}' ({why}); renewed every"
            f" {lease.renew_every:g} s, taken over after {lease.seconds:g} s without renewal"
        )

    def lost(self) -> str | None:
        try:
            why = self.lease.lost_reason()
        except sa.exc.DBAPIError:
            return None
        return None if why is None else f"lease '{self.lease.name}': {why}"

    def fence(self) -> str | None:
        why = self.lease.fence()
        return None if why is None else f"lease '{self.lease.name}': {why}"

    def check(self, **_: Any) -> None:
        self.lease.check()
        if self.lease.galera:
            require_toi(self.connection)


class _PostgreSQLSessionLock(RunLock):
    def __init__(self, connection: sa.Connection, name: str) -> None:
        self.connection = connection
        self.name = name
        self.key = postgresql_lock_key(name)
        self.description = (
            f"pg_advisory_lock({self.key}) ('{name}') on the connection that runs the"
            " revisions (PostgreSQL: a session lock, held across the commits of"
            " autocommit_block(); waiters poll outside any transaction, so a concurrent index"
            " build never waits for them)"
        )

    def check(self, **_: Any) -> None:
        try:
            held = self.connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND objsubid = 1"
                    " AND classid = CAST(:high AS oid) AND objid = CAST(:low AS oid)"
                ),
                {"high": (self.key >> 32) & 0xFFFFFFFF, "low": self.key & 0xFFFFFFFF},
            ).scalar()
        except sa.exc.DBAPIError as error:
            raise _lost(self.name, f"its connection failed: {error.orig}") from error
        if not held:
            raise _lost(
                self.name,
                "this server session does not hold it: a pooler in transaction mode lent"
                " another one; set ENTITYDB_MIGRATION_LOCK = 'lease'",
            )


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
    pooler = _pooler_hint(connection) if backend == "postgresql" else ""
    if galera is not None or mode == "lease" or pooler:
        if galera is not None:
            why = f"Galera cluster of {galera[0]} node(s): GET_LOCK holds on one node only"
        elif mode == "lease":
            why = "ENTITYDB_MIGRATION_LOCK = 'lease'"
        else:
            why = "PostgreSQL" + pooler + ": a session lock would land on any server connection"
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
        with migration_lock(connection, timeout=timeout, name=name, notify=notify):
            lock = _PostgreSQLSessionLock(connection, name)
            _taken(notify, lock)
            yield lock
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
        f" (the server listens on port {listening} but the URL names {named}: a pooler"
        " such as PgBouncer is probably in between)"
    )


def _taken(notify: Notify | None, lock: RunLock) -> None:
    if notify is not None:
        notify(LockNotice("taken", f"Migration lock: {lock.description}."))


def _sqlite_path(connection: sa.Connection) -> str:
    for row in _rows(connection, "PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2] or "")
    return ""
