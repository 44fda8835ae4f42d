"""The database-level lock that serialises migration runs of many processes.

``flask db upgrade``, ``downgrade`` and ``stamp`` hold it for their whole run, so N
replicas started at once apply each revision exactly once: the first takes the lock and
migrates, the others wait (bounded by the timeout), then find the database at head.

How the lock is taken depends on the database:

* **MySQL / MariaDB**: ``GET_LOCK(name, timeout)`` and ``RELEASE_LOCK(name)``. The lock
  belongs to the *session*, so it must be taken on the connection that stays checked out
  for the whole run (the one Alembic migrates with). It survives commits and is released by
  the server if the connection dies.
* **PostgreSQL**: a session-level advisory lock (``pg_advisory_lock`` family) on a 64-bit
  key derived from the lock name. It is taken with ``pg_try_advisory_lock`` in a loop with
  short sleeps until the deadline, so a timeout never raises inside the database and never
  leaves the connection in a failed transaction. Session-level advisory locks are not
  released by ``COMMIT``/``ROLLBACK``; they are released explicitly, or when the session ends.
* **SQLite**: an exclusive ``flock`` on a lock file in the system's temporary folder,
  named after the database file's real path (``flask-entitydb-<hash>.migration-lock``),
  so nothing is left next to the database (a repository, an app's folder). SQLite's own
  locks cannot do this job:
  ``BEGIN EXCLUSIVE`` on the migration connection lasts only until the first ``COMMIT``,
  and Alembic commits after each revision (and must, for DDL), so between two revisions
  another process could take the database and apply the same revision again; holding an
  exclusive transaction on a *second* connection would block Alembic's own DDL. A lock
  file is independent of SQLite's transactions and locks (SQLite uses POSIX byte-range
  locks on the database file; ``flock`` on a different file never interacts with them),
  is held by the open file description, so it serialises processes and threads alike, and
  is released by the operating system if the process dies. The lock file is left in place
  on purpose: deleting it would let a waiter lock an unlinked file. An in-memory database
  is only visible to its own process, so it gets a process-local lock instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, Literal

import sqlalchemy as sa

from flask_entitydb.errors import LockTimeoutError, MigrationError
from flask_entitydb.migrations._locks.discard import discard

LOCK_NAME_PREFIX = "flask_entitydb_migrate:"
"""Prefix of every default lock name."""

MAX_LOCK_NAME_LENGTH = 64
"""The longest lock name MySQL accepts for ``GET_LOCK``."""

SQLITE_LOCK_SUFFIX = ".migration-lock"
"""Appended to a SQLite database file's path to name its lock file."""

_POLL_START = 0.02
_POLL_MAX = 0.25

_Release = Callable[[sa.Connection, str], None]


@dataclasses.dataclass(frozen=True)
class LockNotice:
    """What the migration lock tells the user: ``"waiting"`` (another process holds it,
    named where the server can tell) or ``"taken"`` (which lock, and why that one;
    ``flask db upgrade -v``)."""

    kind: Literal["waiting", "taken"]
    message: str


Notify = Callable[[LockNotice], None]

_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def lock_name(connection: sa.Connection) -> str:
    """The default lock name for the database ``connection`` is connected to.

    It is deterministic (the same database gives the same name in every process and for
    every spelling of the server's address), at most 64 characters long, and differs
    between databases on the same server.
    """
    backend = connection.engine.url.get_backend_name()
    if backend == "sqlite":
        database = _sqlite_file(connection) or ":memory:"
    elif backend == "postgresql":
        # Advisory locks are scoped to one database already; the name keeps keys apart.
        database = str(_scalar(connection, "SELECT current_database()"))
    else:
        # Ask the server rather than the URL: clients may spell the host differently.
        database = str(_scalar(connection, "SELECT DATABASE()") or "")
    return _name_for(database)


def _name_for(database: str) -> str:
    name = LOCK_NAME_PREFIX + database
    if len(name) > MAX_LOCK_NAME_LENGTH:
        digest = hashlib.sha256(database.encode()).hexdigest()
        name = LOCK_NAME_PREFIX + digest[: MAX_LOCK_NAME_LENGTH - len(LOCK_NAME_PREFIX)]
    return name


@contextlib.contextmanager
def migration_lock(
    connection: sa.Connection,
    *,
    timeout: float,
    name: str | None = None,
    notify: Notify | None = None,
) -> Iterator[None]:
    """Hold the database-level migration lock while the ``with`` block runs.

    Take it on the connection the migrations run on, before Alembic starts its first
    transaction: the connection is left as it was found (not in a transaction, if it was
    not in one), so Alembic manages its transactions as usual. The lock is released when
    the block ends, also when it raises.

    :param connection: an open connection that stays open for the whole block.
    :param timeout: seconds to wait for another holder to release the lock; ``0`` tries
        once.
    :param name: the lock's name; default :func:`lock_name` of the connection's database.
    :param notify: told once when the lock is taken by someone else and waiting starts.
    :raises LockTimeoutError: the lock was not free within ``timeout`` seconds.
    """
    if name is None:
        name = lock_name(connection)
    timeout = max(0.0, float(timeout))
    backend = connection.engine.url.get_backend_name()
    if backend in {"mysql", "mariadb"}:
        acquire, release = _mysql_acquire, _mysql_release
    elif backend == "postgresql":
        acquire, release = _postgresql_acquire, _postgresql_release
    elif backend == "sqlite":
        with _sqlite_lock(connection, name, timeout, notify):
            yield
        return
    else:
        raise MigrationError(
            f"flask-entitydb has no migration lock for the '{backend}' database; use MySQL,"
            " MariaDB, PostgreSQL or SQLite."
        )
    acquire(connection, name, timeout, notify)
    failed = True
    try:
        yield
        failed = False
    finally:
        _release_safely(connection, name, release, failed=failed)


def timeout_error(name: str, timeout: float) -> LockTimeoutError:
    """The error of a lock not taken within ``timeout`` seconds."""
    return LockTimeoutError(
        f"Could not take the migration lock '{name}' within {timeout:g} seconds; another"
        " 'flask db upgrade' is probably running: retry, or raise --lock-timeout."
    )


def _rows(connection: sa.Connection, sql: str, **params: object) -> list[tuple[Any, ...]]:
    """Run one statement without leaving a transaction behind that was not there."""
    was_in_transaction = connection.in_transaction()
    rows = [tuple(row) for row in connection.execute(sa.text(sql), params)]
    if not was_in_transaction:
        connection.commit()
    return rows


def _scalar(connection: sa.Connection, sql: str, **params: object) -> object:
    return _rows(connection, sql, **params)[0][0]


def _release_safely(
    connection: sa.Connection,
    name: str,
    release: _Release,
    *,
    failed: bool,
) -> None:
    if connection.closed or connection.invalidated:
        return  # the session is gone, and the server released its locks with it
    try:
        if failed and connection.in_transaction():
            # The block failed mid-transaction (on PostgreSQL the transaction may be
            # aborted, refusing every statement): undo it so the release can run.
            connection.rollback()
        release(connection, name)
    except sa.exc.DBAPIError:
        # The session may still hold the lock: close it rather than hand it back to the
        # pool (the server drops the lock with the session).
        discard(connection)
        if not failed:
            raise
        # Keep the block's own error.


# -- MySQL / MariaDB -----------------------------------------------------------------------


def _waiting(name: str, timeout: float, holder: str) -> LockNotice:
    return LockNotice(
        "waiting", f"Waiting up to {timeout:g} s for the migration lock '{name}': {holder}."
    )


def mysql_holder(connection: sa.Connection, name: str) -> str:
    """Who holds the ``GET_LOCK`` lock ``name``, as far as the server tells."""
    rows = _rows(
        connection,
        "SELECT p.ID, p.USER, p.HOST, p.COMMAND, p.TIME FROM information_schema.PROCESSLIST p"
        " WHERE p.ID = IS_USED_LOCK(:name)",
        name=name,
    )
    if not rows:
        return "held by a connection this user cannot see (PROCESS privilege)"
    ident, user, host, command, seconds = rows[0]
    return f"held by connection {ident} ({user}@{host}, {command} for {seconds} s)"


def _mysql_acquire(
    connection: sa.Connection, name: str, timeout: float, notify: Notify | None = None
) -> None:
    deadline = time.monotonic() + timeout
    got = _scalar(connection, "SELECT GET_LOCK(:name, 0)", name=name)
    if got is not None and int(str(got)) != 1 and timeout > 0:
        if notify is not None:
            notify(_waiting(name, timeout, mysql_holder(connection, name)))
        remaining = max(0.0, deadline - time.monotonic())
        got = _scalar(connection, "SELECT GET_LOCK(:name, :timeout)", name=name, timeout=remaining)
    if got is None:
        raise LockTimeoutError(
            f"The database refused the migration lock '{name}' (GET_LOCK returned NULL);"
            " check the server's error log, then retry."
        )
    if int(str(got)) != 1:
        raise timeout_error(name, timeout)


def _mysql_release(connection: sa.Connection, name: str) -> None:
    _scalar(connection, "SELECT RELEASE_LOCK(:name)", name=name)


# -- PostgreSQL ----------------------------------------------------------------------------


def postgresql_lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key PostgreSQL uses for the lock ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def postgresql_holder(connection: sa.Connection, name: str) -> str:
    """Who holds the advisory lock of ``name``, from ``pg_locks`` and ``pg_stat_activity``."""
    key = postgresql_lock_key(name)
    rows = _rows(
        connection,
        "SELECT a.pid, a.usename, a.client_addr, a.client_port, a.application_name, a.state"
        " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.classid = CAST(:high AS oid) AND l.objid = CAST(:low AS oid)"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        high=(key >> 32) & 0xFFFFFFFF,
        low=key & 0xFFFFFFFF,
    )
    if not rows:
        return "held by a session that is gone now"
    pid, user, address, port, application, state = rows[0]
    if user is None:
        return f"held by backend pid {pid} (details need the pg_read_all_stats role)"
    client = f"{address}:{port}" if address is not None else "a local socket"
    app = f", application '{application}'" if application else ""
    return f"held by backend pid {pid} ({user}@{client}{app}, {state})"


def postgresql_wait(
    connection: sa.Connection,
    name: str,
    timeout: float,
    notify: Notify | None,
    *,
    function: str = "pg_try_advisory_lock",
    run: Callable[[str, int], object] | None = None,
) -> None:
    """Try ``function`` on the lock key of ``name`` until it succeeds or ``timeout``
    passes; ``run`` executes the try (default: one statement, committed)."""
    key = postgresql_lock_key(name)
    sql = f"SELECT {function}(:key)"

    def attempt(sql: str, key: int) -> object:
        return _scalar(connection, sql, key=key)

    run = run or attempt
    deadline = time.monotonic() + timeout
    pause = _POLL_START
    told = False
    while not run(sql, key):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise timeout_error(name, timeout)
        if not told and notify is not None:
            told = True
            notify(_waiting(name, timeout, postgresql_holder(connection, name)))
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _POLL_MAX)


def _postgresql_acquire(
    connection: sa.Connection, name: str, timeout: float, notify: Notify | None = None
) -> None:
    postgresql_wait(connection, name, timeout, notify)


def _postgresql_release(connection: sa.Connection, name: str) -> None:
    _scalar(connection, "SELECT pg_advisory_unlock(:key)", key=postgresql_lock_key(name))


# -- SQLite --------------------------------------------------------------------------------


def _sqlite_file(connection: sa.Connection) -> str:
    """Absolute path of the main database file, or ``""`` for an in-memory database."""
    for row in _rows(connection, "PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2] or "")
    return ""


def sqlite_lock_file(database_file: str, name: str) -> str:
    """The lock file of the lock ``name`` of the SQLite database at ``database_file``: in
    the temporary folder, ``flask-entitydb-<hash of its real path>.migration-lock`` for
    the default name, with a short hash of the name appended for any other name. Every
    process of the machine that opens the database, by any path to it, finds it."""
    digest = hashlib.sha256(os.path.realpath(database_file).encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"flask-entitydb-{digest}{SQLITE_LOCK_SUFFIX}")
    if name != _name_for(database_file):
        path += "-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return path


@contextlib.contextmanager
def _sqlite_lock(
    connection: sa.Connection, name: str, timeout: float, notify: Notify | None = None
) -> Iterator[None]:
    path = _sqlite_file(connection)
    if not path:
        with _process_lock(name, timeout):
            yield
        return
    with open(sqlite_lock_file(path, name), "a+b") as lock_file:
        deadline = time.monotonic() + timeout
        pause = _POLL_START
        told = False
        while not _try_lock_file(lock_file):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timeout_error(name, timeout)
            if not told and notify is not None:
                told = True
                notify(_waiting(name, timeout, f"held by another process ('{lock_file.name}')"))
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _POLL_MAX)
        try:
            yield
        finally:
            _unlock_file(lock_file)


@contextlib.contextmanager
def _process_lock(name: str, timeout: float) -> Iterator[None]:
    with _local_locks_guard:
        lock = _local_locks.setdefault(name, threading.Lock())
    if not lock.acquire(timeout=timeout):
        raise timeout_error(name, timeout)
    try:
        yield
    finally:
        lock.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock_file(lock_file: IO[bytes]) -> bool:
        lock_file.seek(0)
        try:
            msvcrt.locking(lock_file.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock_file(lock_file: IO[bytes]) -> None:
        lock_file.seek(0)
        msvcrt.locking(lock_file.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock_file(lock_file: IO[bytes]) -> bool:
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock_file(lock_file: IO[bytes]) -> None:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
