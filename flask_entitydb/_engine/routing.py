"""Read replicas: which engine serves a read, and the health of each replica.

Inside a request, a ``GET``, ``HEAD`` or ``OPTIONS`` reads from a replica of the bind;
flushes, DML statements, other methods, the CLI and migrations use the primary. After a
client's write, the primary's replication position (MariaDB ``@@gtid_binlog_pos``,
PostgreSQL ``pg_current_wal_insert_lsn()``) and the time are kept in a small cookie of
their own (:mod:`flask_entitydb._engine.cookie`, sealed with the app's ``SECRET_KEY``).
The client's next reads go to a replica only once that replica has replayed the position
(``MASTER_GTID_WAIT`` / ``pg_last_wal_replay_lsn()``), and to the primary until then.
Where no position can be read, the client reads from the primary for
``ENTITYDB_REPLICA_STICKY_SECONDS``.

A replica that cannot be reached, does not receive from its primary, or is more than
``ENTITYDB_REPLICA_MAX_LAG`` behind by position (:mod:`~flask_entitydb._engine.positions`)
is skipped for a back-off period, with one WARNING line; a read that fails on a replica is
run again on the primary (:class:`~flask_entitydb._engine.replica_reads.ReplicaReads`), so no
request fails because a replica did.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import has_request_context, request

from flask_entitydb._engine.cookie import COOKIE_NAME, LastWriteCookie
from flask_entitydb._engine.positions import (
    PrimarySamples,
    has_replayed,
    primary_position,
    replica_status,
)
from flask_entitydb._settings.masking import mask_text, mask_url
from flask_entitydb.errors import ReplicaWriteError

log = logging.getLogger("flask_entitydb")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Request methods whose reads may be served by a replica."""


LAG_CHECK_SECONDS = 1.0
"""How often each process measures a replica's lag (with ``ENTITYDB_REPLICA_MAX_LAG``)."""

BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds a failed replica is skipped, after its 1st, 2nd, ... failure in a row."""

REPLICA_FAILURES = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError)
"""The errors of a replica that make it skipped (and the read run again on the primary)."""


_WRITE_REFUSED = re.compile(r"read[- ]only transaction", re.IGNORECASE)
"""How MySQL/MariaDB (1792) and PostgreSQL (25006) refuse a write in a read-only
session, in every driver's message."""


def refuse_writes(engine: sa.Engine) -> None:
    """Make the refusal of a write by the read-only session of replica ``engine`` a
    :class:`~flask_entitydb.errors.ReplicaWriteError` that says what to do (the session
    runs the statement again on the primary where it can)."""
    name = mask_url(engine.url)

    def refused(context: sa.engine.ExceptionContext) -> BaseException | None:
        original = context.original_exception
        if not _WRITE_REFUSED.search(str(original)):
            return None
        return ReplicaWriteError(
            f"A statement that writes reached the read replica '{name}', which refused it"
            f" ({one_line(original)}); run it inside 'with db.primary():' or decorate the"
            " view with '@db.primary()'."
        )

    sa.event.listen(engine, "handle_error", refused)


@dataclass(eq=False)
class Replica:
    """One read replica engine and what this process knows about its health."""

    engine: sa.Engine
    name: str
    """The masked URL, for log lines."""
    skip_until: float = 0.0
    failures: int = 0
    lag_checked: float = -LAG_CHECK_SECONDS
    fresh: bool = True
    """Whether its last lag check showed it within ``ENTITYDB_REPLICA_MAX_LAG`` (always
    true without one)."""

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
    samples: PrimarySamples = field(init=False)
    """This process's samples of the primary's position, to measure lag by."""

    def __post_init__(self) -> None:
        self.samples = PrimarySamples(self.primary)

    def in_turn(self) -> list[Replica]:
        """The replicas, starting with the next one in round-robin order."""
        # next() on itertools.count is atomic: threads need no lock to take turns
        start = next(self._turns) % len(self.replicas)
        return [*self.replicas[start:], *self.replicas[:start]]


def one_line(error: BaseException) -> str:
    """The first line of ``error`` (of the driver's error under it), masked, for logs."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    return mask_text(text[0] if text else type(original).__name__)


class Router(LastWriteCookie):
    """Chooses the engine of each read for one app (see the module's description), and
    keeps each client's last write in its cookie."""

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
        super().__init__(position_seconds=max(sticky_seconds, max_lag or 0.0))
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
            if replica.usable(now) and (not checks or self._fit(replicas, replica, position, now)):
                return replica.engine
        return primary

    def _fit(
        self, replicas: ReplicaSet, replica: Replica, position: str | None, now: float
    ) -> bool:
        """Whether ``replica`` can serve the read: reachable, within
        ``ENTITYDB_REPLICA_MAX_LAG`` of its primary, and at ``position`` if one is given."""
        check_lag = self.max_lag is not None and now - replica.lag_checked >= LAG_CHECK_SECONDS
        if not check_lag:
            if not replica.fresh:
                return False  # not shown to be within MAX_LAG: checked again next second
            if position is None:
                return True
        problem = None
        replayed = True
        try:
            with replica.engine.connect() as connection:
                if check_lag:
                    problem = self._check_lag(replicas, replica, connection, now)
                if problem is None and replica.fresh and position is not None:
                    replayed = has_replayed(connection, position)
        except REPLICA_FAILURES as error:
            problem = one_line(error)
        if problem is not None:  # outside the block: fail() disposes of the engine
            replica.fail(problem, now)
            return False
        replica.succeeded()
        return replica.fresh and replayed

    def _check_lag(
        self, replicas: ReplicaSet, replica: Replica, connection: sa.Connection, now: float
    ) -> str | None:
        """Measure ``replica``'s lag by position (sets ``replica.fresh``); the reason to
        skip it, if any."""
        assert self.max_lag is not None
        replica.lag_checked = now
        replica.fresh = False
        limit = f"ENTITYDB_REPLICA_MAX_LAG = {self.max_lag:g} s"
        # the primary first: the replica's position read after it is the likelier to reach it
        replicas.samples.sample(now, LAG_CHECK_SECONDS)
        status = replica_status(connection)
        if not status.receiving:
            return (
                "it does not receive from its primary (replication stopped or disconnected),"
                f" so its lag cannot be bounded by {limit}"
            )
        if status.applied is None or not replicas.samples.samples:
            # MySQL: no position to compare, the server's own estimate
            behind = status.seconds_behind
            if behind is None or behind > self.max_lag:
                shown = "not replicating" if behind is None else f"{behind:.1f} s"
                return f"it lags behind its primary ({shown}, more than {limit})"
            replica.fresh = True
            return None
        at_least, at_most = replicas.samples.behind(status.applied, now)
        if at_least > self.max_lag:
            return (
                f"it is at least {at_least:.1f} s behind its primary by replication"
                f" position (more than {limit})"
            )
        replica.fresh = at_most <= self.max_lag
        if not replica.fresh:
            # stale by an unknown amount up to at_most: the primary serves, and the next
            # read checks again until the replica is shown within MAX_LAG, or behind it
            replica.lag_checked = now - LAG_CHECK_SECONDS
        return None

    def replica_for(self, engine: sa.Engine) -> Replica | None:
        """The :class:`Replica` of ``engine``, or ``None`` if it is not a replica."""
        return self._by_engine.get(engine)

    def positions_after(self, written: set[str | None]) -> dict[str, str]:
        """The positions of the primaries of the binds ``written`` that have replicas."""
        positions = {}
        for key in written:
            replicas = self.sets.get(key)
            if replicas is None:
                continue
            position = primary_position(replicas.primary)
            if position is not None:
                positions[key or ""] = position
        return positions


def make_replica(engine: sa.Engine, name: str = "") -> Replica:
    """A :class:`Replica` of ``engine``, named ``name`` (its URL as configured, masked)
    or else by its masked URL; a write it refuses raises
    :class:`~flask_entitydb.errors.ReplicaWriteError`."""
    refuse_writes(engine)
    return Replica(engine=engine, name=name or mask_url(engine.url))
