"""Replication positions: the primary's, a replica's, and how far a replica is behind.

A position is the server's own text: MariaDB's GTID position (``0-1-29``, one
``domain-server-sequence`` per replication domain), PostgreSQL's WAL location
(``0/3000148``). Lag is measured by position, never by the server's estimate
(``Seconds_Behind_Master`` reads 0 on a replica that stopped receiving, and stays small
under ``MASTER_DELAY``): each process samples its primary's position at most once a
second, and a replica that has not applied a position the primary had more than
``ENTITYDB_REPLICA_MAX_LAG`` seconds ago is behind by more than that. A replica that
does not receive from its primary at all (no WAL receiver streaming, replication I/O
thread stopped) is behind by an unknown amount.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

import sqlalchemy as sa

from flask_entitydb._settings.masking import mask_text

log = logging.getLogger("flask_entitydb")

POSITION_WAIT_SECONDS = 0.0
"""How long a replica may take to reach a client's write position before the read goes
to the primary (0: it is asked once; see docs/scaling-out.md for the measurements)."""

SAMPLES_KEPT = 120
"""How many samples of its primary's position a process keeps per bind."""


def _is_mariadb(engine: sa.Engine | sa.Connection) -> bool:
    return bool(getattr(engine.dialect, "is_mariadb", False))


def _one_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return mask_text(text[0] if text else type(error).__name__)


def primary_position(engine: sa.Engine) -> str | None:
    """The primary's replication position right now, or ``None`` where it cannot be
    read (MySQL, SQLite, an error)."""
    backend = engine.url.get_backend_name()
    if backend not in {"postgresql", "mysql", "mariadb"}:
        return None
    try:
        with engine.connect() as connection:
            # asked of the connection: the dialect knows MariaDB once it has connected
            if backend == "postgresql":
                # the insert position: with synchronous_commit=off the write position
                # may still be before the commit record
                sql = "SELECT CAST(pg_current_wal_insert_lsn() AS text)"
            elif _is_mariadb(connection):
                sql = "SELECT @@gtid_binlog_pos"
            else:
                return None
            value = connection.exec_driver_sql(sql).scalar()
    except sa.exc.DBAPIError as error:
        log.debug("Could not read the primary's position: %s", _one_line(error))
        return None
    return str(value) if value is not None else None


def _lsn(position: str) -> int:
    high, _, low = position.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _gtids(position: str) -> dict[str, int]:
    found = {}
    for gtid in position.replace(" ", "").split(","):
        if gtid:
            domain, _, sequence = gtid.split("-", 2)
            found[domain] = int(sequence)
    return found


def reached(applied: str, target: str, backend: str) -> bool:
    """Whether a replica that has applied ``applied`` has everything of ``target``."""
    if backend == "postgresql":
        return _lsn(applied) >= _lsn(target)
    have = _gtids(applied)
    return all(have.get(domain, -1) >= sequence for domain, sequence in _gtids(target).items())


def has_replayed(connection: sa.Connection, position: str) -> bool:
    """Whether the replica of ``connection`` has applied ``position``, waiting up to
    :data:`POSITION_WAIT_SECONDS` for it (MariaDB ``MASTER_GTID_WAIT``; PostgreSQL, which
    has no such function, asked again every 5 ms)."""
    wait = POSITION_WAIT_SECONDS
    if connection.dialect.name != "postgresql" and wait <= 0:
        applied = connection.exec_driver_sql("SELECT @@gtid_slave_pos").scalar()
        return applied is not None and reached(str(applied), position, "mariadb")
    if connection.dialect.name != "postgresql":
        result = connection.execute(
            sa.text("SELECT MASTER_GTID_WAIT(:pos, :timeout)"),
            {"pos": position, "timeout": wait},
        ).scalar()
        return result == 0
    check = sa.text("SELECT pg_last_wal_replay_lsn() >= CAST(:pos AS pg_lsn)")
    deadline = time.monotonic() + wait
    while True:
        if connection.execute(check, {"pos": position}).scalar():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


@dataclass
class ReplicaStatus:
    """What a replica says about its replication, in one round trip."""

    applied: str | None
    """The position it has applied (``None``: it is not a replica, or cannot say)."""
    receiving: bool
    """Whether it receives from its primary."""
    seconds_behind: float | None = None
    """MySQL's estimate, used only where positions cannot be compared (MySQL)."""


def replica_status(connection: sa.Connection) -> ReplicaStatus:
    """The replica's applied position and whether it receives from its primary (one round
    trip; two on MariaDB)."""
    if connection.dialect.name == "postgresql":
        row = connection.execute(
            sa.text(
                "SELECT pg_is_in_recovery(), CAST(pg_last_wal_replay_lsn() AS text),"
                " (SELECT status FROM pg_stat_wal_receiver LIMIT 1)"
            )
        ).one()
        recovering, applied, receiver = row
        return ReplicaStatus(
            applied=applied if recovering else None,
            receiving=bool(recovering) and receiver == "streaming",
        )
    status = connection.exec_driver_sql("SHOW SLAVE STATUS").mappings().first()
    if status is None:
        return ReplicaStatus(applied=None, receiving=False)
    behind = status.get("Seconds_Behind_Master")
    applied = None
    if _is_mariadb(connection):
        # (SHOW SLAVE STATUS shows Gtid_IO_Pos, what it received, not what it applied)
        applied = connection.exec_driver_sql("SELECT @@gtid_slave_pos").scalar()
    return ReplicaStatus(
        applied=None if applied is None else str(applied),
        receiving=status.get("Slave_IO_Running") == "Yes",
        seconds_behind=None if behind is None else float(behind),
    )


@dataclass(eq=False)
class PrimarySamples:
    """This process's samples of one primary's position: ``(time.monotonic(), position)``,
    oldest first."""

    engine: sa.Engine
    samples: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))

    def sample(self, now: float, every: float) -> tuple[float, str] | None:
        """The newest sample, taking a new one when the newest is ``every`` seconds old."""
        if not self.samples or now - self.samples[-1][0] >= every:
            position = primary_position(self.engine)
            if position is None:
                return self.samples[-1] if self.samples else None
            self.samples.append((now, position))
        return self.samples[-1]

    def behind(self, applied: str, now: float) -> tuple[float, float]:
        """Bounds of how stale a replica that has applied ``applied`` is, in seconds:
        at least the age of the oldest sample it has not reached, at most the age of the
        newest sample it has reached (``inf`` without one); ``(0, 0)`` when it has the
        newest."""
        backend = self.engine.url.get_backend_name()
        at_least, at_most = 0.0, float("inf")
        for taken, position in self.samples:
            if reached(applied, position, backend):
                at_most = now - taken
            elif at_least == 0.0:
                at_least = now - taken
        if self.samples and reached(applied, self.samples[-1][1], backend):
            return 0.0, 0.0
        return at_least, at_most
