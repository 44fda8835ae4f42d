"""The session's part for apps with read replicas, imported only by them (the module and
the router it needs cost every other app's start-up nothing):

- :class:`ReplicaReads`, mixed into the session class by :func:`install_routing`: a read
  that fails on a replica runs again on the primary;
- a listener on each primary's commits: within a request, the client's write, so its next
  reads go to that primary (the last-write cookie).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask, has_request_context
from sqlalchemy import orm

from flask_entitydb._compat.sqlalchemy import after_commit, mix_into_sessions
from flask_entitydb._engine.routing import REPLICA_FAILURES, Router, one_line
from flask_entitydb.errors import ReplicaWriteError


def _switch_to_primary(
    session: Any, statement: Any, bind_arguments: Any, error: Exception | None
) -> bool:
    """After ``error``: when ``statement`` ran on a replica, skip that replica, send the
    session's reads of its bind to the primary and say so (the caller runs it again).

    Without ``error``, the replica refused ``statement`` as a write (a ``text()`` that
    writes): the replica is fine, and the statement and the rest of the request's
    statements of its bind go to the primary, where its commit counts as the client's
    write."""
    routes = getattr(session, "_routes", None)
    router: Router | None = getattr(routes, "router", None)
    chosen: dict[str | None, sa.Engine] | None = getattr(session, "_entitydb_reads", None)
    if router is None or chosen is None:
        return False
    engine = session.get_bind(**{"clause": statement, **(bind_arguments or {})})
    replica = router.replica_for(engine)
    if replica is None:
        return False
    for key, used in list(chosen.items()):
        if used is engine:
            chosen[key] = router.sets[key].primary
    if error is None:
        # nothing was written on the replica; what the request read there stays valid
        return True
    replica.fail(one_line(error), time.monotonic())
    if not getattr(session, "_entitydb_written", None):
        # nothing of this request is at stake: start over on a clean transaction
        session.rollback()
    return True


class ReplicaReads:
    """Session mixin of apps with replicas: a read that fails on a replica (refused,
    dropped connection) runs again on the primary, so no request fails because a replica
    did. Mixed into the session class only when an app has replicas, so apps without pay
    nothing."""

    def _read(self, method: Callable[..., Any], statement: Any, args: Any, kwargs: Any) -> Any:
        """``method(statement, ...)``, run again on the primary if the replica failed it."""
        try:
            return method(statement, *args, **kwargs)
        except (ReplicaWriteError, *REPLICA_FAILURES) as error:
            cause = None if isinstance(error, ReplicaWriteError) else error
            if not _switch_to_primary(self, statement, kwargs.get("bind_arguments"), cause):
                raise
        return method(statement, *args, **kwargs)

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self._read(super().execute, statement, args, kwargs)  # type: ignore[misc]

    def scalars(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self._read(super().scalars, statement, args, kwargs)  # type: ignore[misc]

    def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self._read(super().scalar, statement, args, kwargs)  # type: ignore[misc]


def install_routing(app: Flask, session: orm.scoped_session[Any], router: Router) -> None:
    """Make the sessions of ``session``'s factory retry failed replica reads on the
    primary (:class:`ReplicaReads`); count every commit on a primary with replicas inside
    a request as the client's write; sign the last-write cookie with ``app``'s secret key.
    """
    router.sign_with(app.secret_key)  # type: ignore[arg-type]
    mix_into_sessions(session.session_factory, ReplicaReads)
    for key, replicas in router.sets.items():
        after_commit(replicas.primary, _commit_listener(router, key, session))


def _commit_listener(
    router: Router, key: str | None, session: orm.scoped_session[Any]
) -> Callable[[], None]:
    """What follows each commit on the primary of bind ``key``.

    On the engine rather than on the session's ``commit()``: every way of committing
    ends there (``session.commit()``, ``with session.begin():``, a nested transaction's
    outer commit, ``connection.commit()``, ``with db.engine.begin():``)."""
    primary = router.sets[key].primary
    registry = session.registry

    def committed() -> None:
        if not has_request_context():
            return  # the CLI, a worker, a test's setup: no client to remember
        router.note_write(key)
        if registry.has():
            # the rest of the request reads this bind where it wrote
            current = registry()
            reads = getattr(current, "_entitydb_reads", None)
            if reads is not None:
                reads[key] = primary
                current._entitydb_written.discard(key)

    return committed
