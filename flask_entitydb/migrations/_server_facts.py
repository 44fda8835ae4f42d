"""What the database servers say, as migrations read it: the backend names of the MySQL
family and the error codes that runtime (the locks, ``env.py``, autogenerate) and
``flask db lint`` both act on.
"""

from __future__ import annotations

import sqlalchemy as sa

from flask_entitydb.migrations._connections import closed_after

MYSQL = ("mysql", "mariadb")
"""The backend names of MySQL and MariaDB, which speak the same DDL (in this order where a
type variant is written for each)."""

NOT_SUPPORTED = (1845, 1846)
"""MySQL/MariaDB refusing an online DDL algorithm clause (1846: not supported for this
operation; 1845: not supported at all)."""

MYSQL_LOCK_WAIT_TIMEOUT = 1205
"""MySQL/MariaDB: a statement gave up waiting for a table or row lock."""

MYSQL_DEADLOCK = 1213
"""MySQL/MariaDB: a deadlock (on Galera also a certification failure)."""

POSTGRESQL_LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL ``lock_not_available``: ``lock_timeout`` expired (SQLSTATE)."""

POSTGRESQL_SERIALIZATION_FAILURE = "40001"
POSTGRESQL_DEADLOCK_DETECTED = "40P01"
POSTGRESQL_UNIQUE_VIOLATION = "23505"


def error_code(error: BaseException) -> int | None:
    """The MySQL/MariaDB error number of a database error, if it has one."""
    if not isinstance(error, sa.exc.DBAPIError):
        return None
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def server_is_mariadb(engine: sa.Engine) -> bool:
    """Whether the MySQL-family server of ``engine`` is MariaDB (``False`` when it cannot
    be reached: its operations are then rendered without ``NOCOPY``)."""
    if engine.dialect.name not in MYSQL:
        return False
    try:
        with closed_after(engine) as connection:
            return bool(getattr(connection.dialect, "is_mariadb", False))
    except sa.exc.DBAPIError:
        return False
