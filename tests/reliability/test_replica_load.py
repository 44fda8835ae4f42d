"""A bounded mixed load (at least 1,000 requests) on a private primary/replica pair, with
the replica paused, delayed and killed in turn: no client ever misses one of its own
writes, and no request fails."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

import pytest
from helpers.replication import AppFactory, Cluster

pytestmark = pytest.mark.slow

CLIENTS = 4
MIN_REQUESTS = 1000


class Load:
    """``CLIENTS`` clients, each writing notes (30 %) and reading all of them (70 %)."""

    def __init__(self, cluster: Cluster, app: object) -> None:
        self.cluster = cluster
        self.app = app
        self.stale: list[str] = []
        self.failures: list[str] = []
        self.ports: list[int] = []
        self.requests = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(n,)) for n in range(CLIENTS)]

    def _client(self, number: int) -> None:
        client = self.app.test_client()  # type: ignore[attr-defined]
        rng = random.Random(number)
        mine: list[str] = []
        while not self.stop.is_set():
            try:
                if rng.random() < 0.3:
                    text = f"c{number}-{len(mine)}"
                    response = client.post("/notes", data={"text": text})
                    if response.status_code == 200:
                        mine.append(text)
                else:
                    response = client.get("/notes")
                    if response.status_code == 200:
                        seen = response.get_json()
                        missing = set(mine) - set(seen["texts"])
                        if missing:
                            self.stale.append(f"{sorted(missing)} from port {seen['port']}")
                        with self._lock:
                            self.ports.append(seen["port"])
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
            except Exception as error:  # a request that raised is a failed request too
                self.failures.append(repr(error))
            with self._lock:
                self.requests += 1

    def phase(self, seconds: float, start: Callable[[], None], end: Callable[[], None]) -> None:
        start()
        time.sleep(seconds)
        end()
        time.sleep(1.0)


def test_a_mixed_load_with_the_replica_paused_delayed_and_killed(
    cluster: Cluster, make_replica_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_replica_app(ENTITYDB_REPLICA_MAX_LAG=2)
    load = Load(cluster, app)
    replica = cluster.replica
    with caplog.at_level(logging.WARNING, logger="flask_entitydb"):
        for thread in load.threads:
            thread.start()
        try:
            time.sleep(1.5)
            load.phase(3.0, cluster.pause, cluster.resume)
            load.phase(3.0, lambda: cluster.delay(3), lambda: cluster.delay(0))
            load.phase(3.0, lambda: replica.stop(crash=True), replica.start)
            deadline = time.monotonic() + 120
            while load.requests < MIN_REQUESTS and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            load.stop.set()
            for thread in load.threads:
                thread.join(timeout=60)
    print(
        f"{cluster.backend}: {load.requests} requests, {len(load.ports)} reads"
        f" ({load.ports.count(replica.port)} by the replica), {len(load.failures)} failed,"
        f" {len(load.stale)} stale reads of the client's own writes"
    )
    assert load.requests >= MIN_REQUESTS
    assert load.failures == []
    assert load.stale == []
    # the replica did serve reads: the load was not simply all on the primary
    assert load.ports.count(replica.port) > 0
    assert load.ports.count(cluster.primary.port) > 0
    assert "is skipped" in caplog.text  # the kill at least
    assert replica.app_password not in caplog.text
