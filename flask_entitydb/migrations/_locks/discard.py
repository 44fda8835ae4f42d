"""Closing a connection a migration run failed on, rather than handing it back to its pool.

A connection goes back to SQLAlchemy's pool through a reset (a ``ROLLBACK``). When the
run failed because its server went away, that reset fails as well, and the pool logs the
failure with a traceback after the command's one-line error: a Galera node leaving the
cluster answers every statement, ``ROLLBACK`` included, with error 1047 ("WSREP has not yet
prepared node for application use"), which SQLAlchemy does not count as a disconnect.
The session may also still hold what the failed run left on it: a ``GET_LOCK`` whose
release failed, a session setting that was not put back.

Such a connection is invalidated instead: its driver connection is closed (the server
ends the session, rolling back and releasing its locks with it), and the pool opens a
new one when it is next asked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa


def discard(connection: sa.Connection) -> None:
    """Invalidate ``connection`` (close it without a reset), unless it is closed or
    invalidated already.

    The driver connection is closed here too: a connection detached from its pool (the
    migration commands' own, see ``_connections``) has no pool record to close it, and
    SQLAlchemy's invalidate only lets go of it, leaving the server session open until
    garbage collection (PostgreSQL then refuses to drop its database).
    """
    if connection.closed or connection.invalidated:
        return
    driver = connection.connection.dbapi_connection
    connection.invalidate()
    if driver is not None:
        with contextlib.suppress(Exception):  # closed already by the pool record
            driver.close()


def rollback_or_discard(connection: sa.Connection) -> None:
    """Roll back ``connection``'s transaction; when even that fails, :func:`discard` it."""
    if connection.closed or connection.invalidated:
        return
    try:
        connection.rollback()
    except sa.exc.DBAPIError:
        discard(connection)


@contextlib.contextmanager
def discarded_on_failure(connection: sa.Connection) -> Iterator[None]:
    """:func:`discard` ``connection`` when the ``with`` block raises, on server databases
    (SQLite has no server to lose, and an in-memory database lives only as long as its
    one connection)."""
    try:
        yield
    except BaseException:
        if connection.dialect.name != "sqlite":
            discard(connection)
        raise


__all__ = ["discard", "discarded_on_failure", "rollback_or_discard"]
