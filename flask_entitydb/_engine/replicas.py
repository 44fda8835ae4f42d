"""Read replicas: which engine serves a read, and read-your-writes for each client.

Inside a request, a ``GET``, ``HEAD`` or ``OPTIONS`` reads from a replica of the bind;
flushes, DML statements, other methods, the CLI and migrations use the primary. After a
client's write, the primary's replication position (MariaDB ``@@gtid_binlog_pos``,
PostgreSQL ``pg_current_wal_insert_lsn()``) and the time are kept in a small cookie of
their own (:data:`COOKIE_NAME`, signed with the app's ``SECRET_KEY``). The client's next
reads go to a replica only once that replica has replayed the position
(``MASTER_GTID_WAIT`` / ``pg_last_wal_replay_lsn()``), and to the primary until then. Where
no position can be read, the client reads from the primary for
``ENTITYDB_REPLICA_STICKY_SECONDS``.

A replica that cannot be reached, or lags more than ``ENTITYDB_REPLICA_MAX_LAG``, is
skipped for a back-off period, with one WARNING line; a read that fails on a replica is
run again on the primary, so no request fails because a replica did.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import sqlalchemy as sa
from flask import Flask, after_this_request, current_app, g, has_request_context, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import scoped_session
from werkzeug.wrappers import Request, Response

from flask_entitydb._settings.masking import mask_text, mask_url

log = logging.getLogger("flask_entitydb")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Request methods whose reads may be served by a replica."""

COOKIE_NAME = "entitydb_write"
"""Name of the cookie that holds the client's last write (time and positions), signed.

A cookie of its own rather than a key of the Flask session: reading it costs nothing for
clients that have not written recently (the browser drops it when its window is over), it
does not make every read response ``Vary: Cookie``, and apps with server-side sessions do
not store a session for every write."""

_SALT = "flask-entitydb.last-write"
_PENDING = "_entitydb_last_write"

POSITION_WAIT_SECONDS = 0.05
"""How long a replica may take to reach a client's write position (MariaDB)."""

LAG_CHECK_SECONDS = 1.0
"""How often each process measures a replica's lag (with ``ENTITYDB_REPLICA_MAX_LAG``)."""

BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds a failed replica is skipped, after its 1st, 2nd, ... failure in a row."""

_FAILURES = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError)


@dataclass(eq=False)
class Replica:
    """One read replica engine and what this process knows about its health."""

    engine: sa.Engine
    name: str
    """The masked URL, for log lines."""
    skip_until: float = 0.0
    failures: int = 0
    lag_checked: float = 0.0
    lag: float | None = 0.0

    def usable(self, now: float) -> bool:
        return now >= self.skip_until

    def fail(self, reason: str, now: float) -> None:
        """Skip this replica for a back-off period; log once per streak of failures."""
        backoff = BACKOFF_SECONDS[min(self.failures, len(BACKOFF_SECONDS) - 1)]
        first = self.failures == 0
        self.failures += 1
        self.skip_until = now + backoff
        message = (
            "Read replica '%s' is skipped: %s; reads go to another replica or the primary,"
            " retrying in %.0f s."
        )
        if first:
            log.warning(message, self.name, reason, backoff)
        else:
            log.debug(message, self.name, reason, backoff)

    def succeeded(self) -> None:
        if self.failures:
            log.info("Read replica '%s' is back in use.", self.name)
            self.failures = 0


@dataclass(eq=False)
class ReplicaSet:
    """The primary engine of one bind and its replicas."""

    key: str | None
    primary: sa.Engine
    replicas: Sequence[Replica]
    _turns: Iterator[int] = field(default_factory=itertools.count)

    def in_turn(self) -> list[Replica]:
        """The replicas, starting with the next one in round-robin order."""
        # next() on itertools.count is atomic: threads need no lock to take turns
        start = next(self._turns) % len(self.replicas)
        return [*self.replicas[start:], *self.replicas[:start]]


def _one_line(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    return mask_text(text[0] if text else type(original).__name__)


def _is_mariadb(engine: sa.Engine) -> bool:
    return bool(getattr(engine.dialect, "is_mariadb", False))


def primary_position(engine: sa.Engine) -> str | None:
    """The primary's replication position right now, or ``None`` where it cannot be
    read (MySQL, SQLite, an error)."""
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        # the insert position: with synchronous_commit=off the write position may still
        # be before the commit record
        sql = "SELECT CAST(pg_current_wal_insert_lsn() AS text)"
    elif backend in {"mysql", "mariadb"} and _is_mariadb(engine):
        sql = "SELECT @@gtid_binlog_pos"
    else:
        return None
    try:
        with engine.connect() as connection:
            value = connection.exec_driver_sql(sql).scalar()
    except sa.exc.DBAPIError as error:
        log.debug("Could not read the primary's position: %s", _one_line(error))
        return None
    return str(value) if value else None


def _has_replayed(connection: sa.Connection, position: str) -> bool:
    if connection.dialect.name == "postgresql":
        return bool(
            connection.execute(
                sa.text("SELECT pg_last_wal_replay_lsn() >= CAST(:pos AS pg_lsn)"),
                {"pos": position},
            ).scalar()
        )
    result = connection.execute(
        sa.text("SELECT MASTER_GTID_WAIT(:pos, :timeout)"),
        {"pos": position, "timeout": POSITION_WAIT_SECONDS},
    ).scalar()
    return result == 0


def _lag(connection: sa.Connection) -> float | None:
    """Seconds the replica is behind, or ``None`` when it is not replicating."""
    if connection.dialect.name == "postgresql":
        value = connection.execute(
            sa.text(
                "SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL"
                " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
                " ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
            )
        ).scalar()
        return None if value is None else max(float(value), 0.0)
    row = connection.exec_driver_sql("SHOW SLAVE STATUS").mappings().first()
    if row is None:
        return None
    behind = row.get("Seconds_Behind_Master")
    return None if behind is None else float(behind)


class Router:
    """Chooses the engine of each read for one app (see the module's description)."""

    def __init__(
        self,
        sets: dict[str | None, ReplicaSet],
        *,
        sticky_seconds: float,
        max_lag: float | None,
    ) -> None:
        self.sets = sets
        self.sticky_seconds = sticky_seconds
        self.max_lag = max_lag
        # a write position is worth checking for as long as a replica may be behind it
        self.position_seconds = max(sticky_seconds, max_lag or 0.0)
        self.signer: URLSafeSerializer | None = None
        """Signs and checks the last-write cookie (set by :func:`install_routing`)."""
        # a client sends the same cookie on each request of its window: check it once
        self._decoded = functools.lru_cache(maxsize=1024)(self._decode)
        self._by_engine = {
            replica.engine: replica for found in sets.values() for replica in found.replicas
        }

    def read_engine(self, key: str | None, primary: sa.Engine) -> sa.Engine:
        """The engine for the reads of bind ``key`` in the current request."""
        replicas = self.sets.get(key)
        if replicas is None or not has_request_context():
            return primary
        current = request._get_current_object()  # type: ignore[attr-defined]
        if current.method not in READ_METHODS:
            return primary
        position = None
        last_write = self.last_write(current) if COOKIE_NAME in current.cookies else None
        if last_write is not None:
            age = time.time() - last_write[0]
            position = last_write[1].get(key or "")
            if position is None and age < self.sticky_seconds:
                return primary
            if age >= self.position_seconds:
                position = None
        now = time.monotonic()
        # nothing to check (the usual read): the first usable replica in turn serves it
        checks = position is not None or self.max_lag is not None
        for replica in replicas.in_turn():
            if replica.usable(now) and (not checks or self._fit(replica, position, now)):
                return replica.engine
        return primary

    def last_write(self, current: Request | None = None) -> tuple[float, dict[str, str]] | None:
        """The client's last write, from the cookie of request ``current`` (default: the
        current request): its time and the primaries' positions by bind key (``""`` for
        the default bind); ``None`` when it has none, or a cookie that is not ours,
        damaged or forged."""
        value = (current or request).cookies.get(COOKIE_NAME)
        if value is None or self.signer is None:
            return None
        return self._decoded(value)

    def _decode(self, value: str) -> tuple[float, dict[str, str]] | None:
        assert self.signer is not None
        try:
            written, positions = self.signer.loads(value)
            return float(written), {str(k): str(v) for k, v in dict(positions).items()}
        except (BadSignature, TypeError, ValueError):
            return None

    def cookie_value(self, written: float, positions: dict[str, str]) -> str:
        """The signed cookie value for a write at ``written`` (a Unix time)."""
        assert self.signer is not None
        return str(self.signer.dumps([round(written, 3), positions]))

    def _fit(self, replica: Replica, position: str | None, now: float) -> bool:
        """Whether ``replica`` can serve the read: reachable, not lagging too much, and at
        ``position`` if one is given."""
        check_lag = self.max_lag is not None and now - replica.lag_checked >= LAG_CHECK_SECONDS
        if not check_lag and position is None:
            return True
        problem = None
        replayed = True
        try:
            with replica.engine.connect() as connection:
                if check_lag:
                    replica.lag = _lag(connection)
                    replica.lag_checked = now
                    problem = self._lag_problem(replica.lag)
                if problem is None and position is not None:
                    replayed = _has_replayed(connection, position)
        except _FAILURES as error:
            problem = _one_line(error)
        if problem is not None:  # outside the block: fail() disposes of the engine
            replica.fail(problem, now)
            return False
        replica.succeeded()
        return replayed

    def _lag_problem(self, lag: float | None) -> str | None:
        assert self.max_lag is not None
        if lag is not None and lag <= self.max_lag:
            return None
        shown = "not replicating" if lag is None else f"{lag:.1f} s"
        return (
            f"it lags behind its primary ({shown}, more than ENTITYDB_REPLICA_MAX_LAG ="
            f" {self.max_lag:g} s)"
        )

    def replica_for(self, engine: sa.Engine) -> Replica | None:
        """The :class:`Replica` of ``engine``, or ``None`` if it is not a replica."""
        return self._by_engine.get(engine)


def record_write(router: Router, written: set[str | None]) -> None:
    """Keep the time of the client's write and the primaries' positions after it in the
    client's last-write cookie, set on the response of the current request."""
    positions = {}
    for key in written:
        replicas = router.sets.get(key)
        if replicas is None:
            continue
        position = primary_position(replicas.primary)
        if position is not None:
            positions[key or ""] = position
    pending: tuple[float, dict[str, str]] | None = g.get(_PENDING)
    previous = pending if pending is not None else router.last_write()
    if previous is not None:
        # keep the positions of the binds this request did not write to
        names = {key or "" for key in written}
        positions = {**{k: v for k, v in previous[1].items() if k not in names}, **positions}
    setattr(g, _PENDING, (time.time(), positions))
    if pending is None:
        after_this_request(partial(_set_cookie, router))


def _set_cookie(router: Router, response: Response) -> Response:
    written, positions = getattr(g, _PENDING)
    app = current_app
    interface = app.session_interface
    response.set_cookie(
        COOKIE_NAME,
        router.cookie_value(written, positions),
        # the browser forgets the write once no replica can still be behind it
        max_age=int(router.position_seconds) + 1,
        path=interface.get_cookie_path(app),
        domain=interface.get_cookie_domain(app),
        secure=interface.get_cookie_secure(app),
        httponly=True,
        samesite=interface.get_cookie_samesite(app),
    )
    return response


def make_replica(engine: sa.Engine) -> Replica:
    """A :class:`Replica` of ``engine``, named by its masked URL."""
    return Replica(engine=engine, name=mask_url(engine.url))


def _switch_to_primary(session: Any, statement: Any, bind_arguments: Any, error: Exception) -> bool:
    """After ``error``: when ``statement`` ran on a replica, skip that replica, send the
    session's reads of its bind to the primary and say so (the caller runs it again)."""
    routes = getattr(session, "_routes", None)
    router: Router | None = getattr(routes, "router", None)
    chosen: dict[str | None, sa.Engine] | None = getattr(session, "_entitydb_reads", None)
    if router is None or chosen is None:
        return False
    engine = session.get_bind(**{"clause": statement, **(bind_arguments or {})})
    replica = router.replica_for(engine)
    if replica is None:
        return False
    replica.fail(_one_line(error), time.monotonic())
    for key, used in list(chosen.items()):
        if used is engine:
            chosen[key] = router.sets[key].primary
    if not getattr(session, "_entitydb_written", None):
        # nothing of this request is at stake: start over on a clean transaction
        session.rollback()
    return True


class ReplicaReads:
    """Session mixin of apps with replicas: a read that fails on a replica (refused,
    dropped connection) runs again on the primary, so no request fails because a replica
    did. Mixed into the session class only when an app has replicas, so apps without pay
    nothing."""

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute(statement, *args, **kwargs)  # type: ignore[misc]
        except _FAILURES as error:
            if not _switch_to_primary(self, statement, kwargs.get("bind_arguments"), error):
                raise
        return super().execute(statement, *args, **kwargs)  # type: ignore[misc]

    def scalars(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().scalars(statement, *args, **kwargs)  # type: ignore[misc]
        except _FAILURES as error:
            if not _switch_to_primary(self, statement, kwargs.get("bind_arguments"), error):
                raise
        return super().scalars(statement, *args, **kwargs)  # type: ignore[misc]

    def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().scalar(statement, *args, **kwargs)  # type: ignore[misc]
        except _FAILURES as error:
            if not _switch_to_primary(self, statement, kwargs.get("bind_arguments"), error):
                raise
        return super().scalar(statement, *args, **kwargs)  # type: ignore[misc]


def install_routing(app: Flask, session: scoped_session[Any], router: Router) -> None:
    """Make the sessions of ``session``'s factory retry failed replica reads on the
    primary (:class:`ReplicaReads`); sign the last-write cookie with ``app``'s secret key."""
    router.signer = URLSafeSerializer(app.secret_key, salt=_SALT)  # type: ignore[arg-type]
    factory = session.session_factory
    if not issubclass(factory.class_, ReplicaReads):
        factory.class_ = type(factory.class_.__name__, (ReplicaReads, factory.class_), {})


def remember_write(router: Router, written: set[str | None]) -> None:
    """After a commit on a primary inside a request: keep the client's write in its
    last-write cookie."""
    if written and has_request_context():
        record_write(router, written)
