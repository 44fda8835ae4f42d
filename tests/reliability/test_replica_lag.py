"""``ENTITYDB_REPLICA_MAX_LAG`` measured by replication position, on private MariaDB
(GTID) and PostgreSQL (streaming) primary/replica pairs.

The server's own estimates are fooled by a replica that stopped receiving (PostgreSQL
reports lag 0) or applies with a delay (``Seconds_Behind_Master`` stays small under
``MASTER_DELAY``). Here a writer commits a row on the primary every 0.2 s while a reader
reads; every read the replica answers must hold every row committed more than
``MAX_LAG`` + 1 s (the once-a-second measurement) before it.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from helpers.replication import AppFactory, Cluster

pytestmark = pytest.mark.slow

MAX_LAG = 2.0
CHECK_EVERY = 1.0  # routing.LAG_CHECK_SECONDS


class Ticker:
    """Commits ``tick-N`` on the primary every 0.2 s; remembers when each was committed."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.committed: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        number = 0
        while not self._stop.wait(0.2):
            number += 1
            self.cluster.insert(f"tick-{number}")
            self.committed.append((time.monotonic(), f"tick-{number}"))

    def missing(self, texts: list[str], before: float) -> list[str]:
        """The ticks committed before ``before`` that ``texts`` lacks."""
        seen = set(texts)
        return [text for at, text in list(self.committed) if at < before and text not in seen]

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("disconnect", "does not receive from its primary"),
        ("delay", "behind its primary by replication position"),
        ("pause", "behind its primary by replication position"),
    ],
)
def test_a_replica_behind_max_lag_is_skipped_measured_by_position(
    cluster: Cluster,
    make_replica_app: AppFactory,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    reason: str,
) -> None:
    app = make_replica_app(ENTITYDB_REPLICA_MAX_LAG=MAX_LAG)
    client = app.test_client()
    assert client.get("/notes").get_json()["port"] == cluster.replica.port
    stale: list[str] = []
    served: list[int] = []
    with caplog.at_level(logging.WARNING, logger="flask_entitydb"), Ticker(cluster) as ticks:
        time.sleep(1.0)
        if fault == "disconnect":
            cluster.disconnect()
        elif fault == "delay":
            cluster.delay(8)
        else:
            cluster.pause()
        deadline = time.monotonic() + 3 * MAX_LAG + 2 * CHECK_EVERY
        while time.monotonic() < deadline:
            started = time.monotonic()
            seen = client.get("/notes").get_json()
            served.append(seen["port"])
            if seen["port"] == cluster.replica.port:
                stale += ticks.missing(seen["texts"], started - MAX_LAG - CHECK_EVERY - 0.2)
            time.sleep(0.05)
    assert stale == []  # never a read staler than MAX_LAG from the replica
    assert served[-1] == cluster.primary.port  # and it was skipped
    warnings = [r.getMessage() for r in caplog.records if "is skipped" in r.getMessage()]
    assert warnings and reason in warnings[0], warnings
    assert "ENTITYDB_REPLICA_MAX_LAG" in warnings[0]
    assert cluster.replica.app_password not in caplog.text


def test_a_healthy_replica_under_writes_keeps_serving(
    cluster: Cluster, make_replica_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_replica_app(ENTITYDB_REPLICA_MAX_LAG=MAX_LAG)
    client = app.test_client()
    served: list[int] = []
    with caplog.at_level(logging.WARNING, logger="flask_entitydb"), Ticker(cluster):
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            served.append(client.get("/notes").get_json()["port"])
            time.sleep(0.05)
    assert "is skipped" not in caplog.text
    assert served.count(cluster.replica.port) > len(served) * 0.8
