"""The lock timeout migrations run with (``ENTITYDB_MIGRATION_LOCK_TIMEOUT``).

A DDL statement waiting for its table lock (behind any transaction that touched the
table) makes every later query of that table wait behind it: the app stalls until the
other transaction ends. With a lock timeout the DDL fails fast instead, and the upgrade can
be retried; the migration's own statements still run as long as they need.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa

from flask_entitydb.migrations._locks.discard import discard
from flask_entitydb.migrations._server_facts import (
    MYSQL,
    MYSQL_LOCK_WAIT_TIMEOUT,
    POSTGRESQL_LOCK_NOT_AVAILABLE,
    error_code,
)


def lock_timeout_sql(dialect: str, seconds: float | None) -> tuple[str, str] | None:
    """The statements that set and reset the migration lock timeout on ``dialect``, or
    ``None`` when there is none to set."""
    if seconds is None:
        return None
    if dialect == "postgresql":
        return f"SET lock_timeout = '{max(1, round(seconds * 1000))}ms'", "RESET lock_timeout"
    if dialect in MYSQL:
        return (
            f"SET SESSION lock_wait_timeout = {max(1, round(seconds))}",
            "SET SESSION lock_wait_timeout = DEFAULT",
        )
    return None


@contextlib.contextmanager
def migration_lock_timeout(connection: sa.Connection, seconds: float | None) -> Iterator[None]:
    """Set PostgreSQL's ``lock_timeout`` / MySQL's ``lock_wait_timeout`` on the migrating
    connection for the ``with`` block, and put the server's default back afterwards (the
    connection returns to the app's pool)."""
    statements = lock_timeout_sql(connection.dialect.name, seconds)
    if statements is None:
        yield
        return
    set_sql, reset_sql = statements
    with session_setting(connection, set_sql, reset_sql):
        yield


@contextlib.contextmanager
def session_setting(connection: sa.Connection, set_sql: str, reset_sql: str) -> Iterator[None]:
    """Run ``set_sql`` on ``connection`` for the ``with`` block and ``reset_sql`` after it
    (the connection returns to the app's pool), both outside any transaction: a transaction
    already begun would keep Alembic from committing its own, and some settings (SQLite's
    ``PRAGMA foreign_keys``) have no effect inside one."""
    if connection.in_transaction():
        connection.commit()
    connection.exec_driver_sql(set_sql)
    connection.commit()
    failed = True
    try:
        yield
        failed = False
    finally:
        if not connection.invalidated and not connection.closed:
            try:
                if connection.in_transaction():
                    connection.rollback()
                connection.exec_driver_sql(reset_sql)
                connection.commit()
            except sa.exc.DBAPIError:
                # the setting stays on the session: close it rather than return it to the
                # pool; after a failed block, its own error is the one to report
                discard(connection)
                if not failed:
                    raise


def is_lock_timeout(error: BaseException) -> bool:
    """Whether ``error`` is a statement that gave up waiting for a table or row lock
    (PostgreSQL ``lock_not_available``, MySQL/MariaDB error 1205)."""
    if not isinstance(error, sa.exc.DBAPIError) or error.orig is None:
        return False
    orig = error.orig
    states = (getattr(orig, "sqlstate", None), getattr(orig, "pgcode", None))  # psycopg 3, psycopg2
    if POSTGRESQL_LOCK_NOT_AVAILABLE in states:
        return True
    return error_code(error) == MYSQL_LOCK_WAIT_TIMEOUT
