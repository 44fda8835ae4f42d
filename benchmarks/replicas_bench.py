"""Cost of read replica routing per request, against the single-engine path, in one run.

Three apps serve the same ``GET /read`` (``session.get(Item, 1)``, the benchmark app's
entity) from the same database:

- ``single``: ``DB_CONNECTION_STRING`` only: the single-engine fast path;
- ``replicas``: the same database also given twice as ``ENTITYDB_REPLICAS``, so the query
  work is identical and only the routing differs (replica choice, round robin, the retry
  hook on the replica's statements);
- ``replicas+written``: like ``replicas``, for a client whose last-write cookie holds a
  recent write without a position (SQLite has none): the sticky window sends it to the
  primary.

Every client sends a session cookie (``user_id``), so decoding it costs every app alike.

Each round sends one request of each app in a shuffled order, timed on its own (wall time
and this thread's CPU time, which a busy machine disturbs far less); the median of the
per-round ratios against ``single`` is the routing cost. Also reported: Python function
calls per request (cProfile; deterministic, so a busy machine cannot disturb it), and how the
``replicas`` app's reads were spread over its two replicas (pool checkouts per engine).

Run from the repository root::

    python benchmarks/replicas_bench.py                      # SQLite and MariaDB
    python benchmarks/replicas_bench.py --backend sqlite --rounds 3000
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from _harness import fmt_ratio, fmt_us, interleave, machine_report, markdown_table, say
from benchapp.entities.item_entity import Item
from flask import Flask
from variants import DEFAULT_MYSQL_URL, database_url, drop_database, prepare_database

from flask_entitydb import EntityDB
from flask_entitydb._engine.cookie import COOKIE_NAME

CASES = ("single", "replicas", "replicas+written")


def _app(url: str, replicas: list[str]) -> tuple[Flask, EntityDB]:
    app = Flask("benchapp")
    app.config.update(
        SECRET_KEY="bench",
        DB_CONNECTION_STRING=url,
        ENTITYDB_ENTITY_PACKAGES=["benchapp.entities"],
    )
    if replicas:
        app.config["ENTITYDB_REPLICAS"] = replicas
    db = EntityDB(app)

    @app.get("/read")
    def read() -> str:
        item = db.session.get(Item, 1)
        return item.name if item is not None else ""

    return app, db


def _timed(send: Callable[[], Any]) -> Callable[[], dict[str, float]]:
    def run() -> dict[str, float]:
        cpu, start = time.thread_time(), time.perf_counter()
        response = send()
        elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu
        assert response.status_code == 200, response.status_code
        return {"wall": elapsed, "cpu": cpu}

    return run


def run_backend(backend: str, rounds: int, mysql_url: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url(backend, "replicas", sqlite_dir=tmp, mysql_url=mysql_url)
        prepare_database(url)
        try:
            return _measure(backend, url, rounds)
        finally:
            if backend == "mysql":
                drop_database(url)


def _measure(backend: str, url: str, rounds: int) -> list[str]:
    apps = {
        "single": _app(url, []),
        "replicas": _app(url, [url, url]),
        "replicas+written": _app(url, [url, url]),
    }
    checkouts: dict[int, int] = {}
    replica_app, _ = apps["replicas"]
    with replica_app.app_context():
        engines = replica_app.extensions["sqlalchemy"].engines
        replica_engines = [engines[key] for key in engines if key and "~replica" in key]
    for number, engine in enumerate(replica_engines):
        checkouts[number] = 0

        def count(*args: Any, number: int = number) -> None:
            checkouts[number] += 1

        sa.event.listen(engine, "checkout", count)
    # the same listener on the other apps' engines: counting costs every app alike
    for name in ("single", "replicas+written"):
        other_app, _ = apps[name]
        with other_app.app_context():
            for engine in other_app.extensions["sqlalchemy"].engines.values():
                sa.event.listen(engine, "checkout", lambda *args: None)

    clients = {}
    for name, (app, _) in apps.items():
        client = app.test_client()
        with client.session_transaction() as session:  # every client has a session cookie
            session["user_id"] = 1
        if name == "replicas+written":
            # a write without a position (SQLite has none) that stays recent: the primary
            router = app.extensions["entitydb"].routes.router
            client.set_cookie(COOKIE_NAME, router.cookie_value(time.time() + 10 * 365 * 86400, {}))
        clients[name] = client
    cases = {name: _timed(lambda c=client: c.get("/read")) for name, client in clients.items()}
    say(f"{backend}: {rounds} rounds")
    results = interleave(cases, rounds, warmup=200, collect_garbage=False)
    calls = {name: _calls_per_request(client) for name, client in clients.items()}
    rows = []
    for name in CASES:
        cells: list[str] = [name]
        for metric in ("wall", "cpu"):
            case, base = f"{name}@{metric}", f"single@{metric}"
            cells.append(fmt_us(results.median(case)))
            if name == "single":
                cells.append("1")
            else:
                cells.append(fmt_ratio(results.ratio(case, base), results.ratio_iqr(case, base)))
        rows.append(tuple(cells))
    rows.append(("", "", "", "", ""))
    for name in CASES:
        extra = calls[name] - calls["single"]
        rows.append((f"{name}: Python calls per request", str(calls[name]), "", f"{extra:+d}", ""))
    spread = ", ".join(f"replica {n + 1}: {count}" for n, count in checkouts.items())
    total = sum(checkouts.values())
    share = [count / total for count in checkouts.values()] if total else []
    for app, _ in apps.values():
        with app.app_context():
            for engine in app.extensions["sqlalchemy"].engines.values():
                engine.dispose()
    lines = [
        f"### {backend}: GET /read, {rounds} rounds",
        "",
        markdown_table(
            (
                "app",
                "wall, median",
                "wall ratio to single (quartiles)",
                "CPU, median",
                "CPU ratio to single (quartiles)",
            ),
            rows,
        ),
        "",
        f"Reads of the `replicas` app per replica (connection checkouts): {spread}"
        + (f" (shares {', '.join(f'{s:.0%}' for s in share)})" if share else ""),
    ]
    if share:
        deviation = max(share) - statistics.mean(share)
        lines.append(f"Largest share's deviation from an even split: {deviation:.1%}")
    return lines


def _calls_per_request(client: Any, requests: int = 50) -> int:
    """Function calls per request (cProfile): a count the machine's load cannot disturb."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        client.get("/read")
    profiler.disable()
    stats = pstats.Stats(profiler)
    return round(stats.total_calls / requests)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "mysql", "all"), default="all")
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    args = parser.parse_args(argv)
    backends = ("sqlite", "mysql") if args.backend == "all" else (args.backend,)
    out = ["## Read replica routing", "", *machine_report(), ""]
    for backend in backends:
        out += [*run_backend(backend, args.rounds, args.mysql_url), ""]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
