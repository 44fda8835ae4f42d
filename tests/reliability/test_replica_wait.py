"""Waiting on the replica for a client's write position, against asking once and going to
the primary: the measurement behind ``positions.POSITION_WAIT_SECONDS`` (see
docs/scaling-out.md). Nothing about time is asserted; what is asserted is that the
writer reads its write back whatever the wait.

With ``ENTITYDB_REPLICA_WAIT_FIGURES=/path/file.jsonl`` the figures of each backend are
added to that file, one JSON object a line.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time

import pytest
from helpers.replication import AppFactory, Cluster

from flask_entitydb._engine import positions

pytestmark = pytest.mark.slow

FIGURES_FILE = os.environ.get("ENTITYDB_REPLICA_WAIT_FIGURES")
WAITS = (0.0, 0.01, 0.05)
ROUNDS = 60


def test_waiting_for_the_write_position_against_going_to_the_primary(
    cluster: Cluster, make_replica_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_replica_app(ENTITYDB_REPLICA_STICKY_SECONDS=120)
    client = app.test_client()
    ports: dict[float, list[int]] = {wait: [] for wait in WAITS}
    times: dict[float, list[float]] = {wait: [] for wait in WAITS}
    rng = random.Random(25)
    for number in range(ROUNDS):
        for wait in rng.sample(WAITS, len(WAITS)):  # interleaved: the machine's load hits all
            monkeypatch.setattr(positions, "POSITION_WAIT_SECONDS", wait)
            text = f"w{wait}-{number}"
            assert client.post("/notes", data={"text": text}).status_code == 200
            started = time.perf_counter()
            seen = client.get("/notes").get_json()
            times[wait].append(time.perf_counter() - started)
            assert text in seen["texts"]  # the writer's own write, whatever the wait
            ports[wait].append(seen["port"])
    figures = {
        "backend": cluster.backend,
        "rounds": ROUNDS,
        "by_wait": {
            str(wait): {
                "replica_share": round(ports[wait].count(cluster.replica.port) / ROUNDS, 3),
                "median_ms": round(statistics.median(times[wait]) * 1000, 2),
                "p95_ms": round(statistics.quantiles(times[wait], n=20)[-1] * 1000, 2),
            }
            for wait in WAITS
        },
    }
    print(json.dumps(figures))
    if FIGURES_FILE:
        with open(FIGURES_FILE, "a", encoding="utf-8") as file:
            file.write(json.dumps(figures) + "\n")
