"""The connections the migration commands open, closed when the command returns.

A command (``upgrade()`` in ``create_app``, ``flask db check``, ``lint``) borrows a
connection from the app's engine, so it runs with the app's connection settings (TLS,
connect arguments, the per-connection checks). Handed back to the app's pool, that
connection would stay open, idle, for as long as the app lives: one per app, which a test
suite building an app per test turns into ``too many clients``. So it is detached from
the pool and really closed when the command is done.

An in-memory SQLite database lives only as long as its one pooled connection: that
connection goes back to its pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa

_KEEP_POOLED = (sa.pool.StaticPool, sa.pool.SingletonThreadPool)
"""Pools of one connection that is the database (in-memory SQLite)."""


@contextlib.contextmanager
def closed_after(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection of ``engine`` that is closed, not returned to the pool, when the
    ``with`` block ends."""
    with engine.connect() as connection:
        try:
            yield connection
        finally:
            # detached at the end, not up front: a detached connection has no pool
            # record, and Alembic's autocommit_block() (an isolation level change) fails
            # on it ('NoneType' object has no attribute 'finalize_callback')
            if (
                not isinstance(engine.pool, _KEEP_POOLED)
                and not connection.closed
                and not connection.invalidated
            ):
                connection.detach()


__all__ = ["closed_after"]
