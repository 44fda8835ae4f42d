"""Per-request overhead in process: Flask's test client (or the bare WSGI call).

Every variant of ``variants.py`` serves the same three views. Each round sends ONE request
of every (view, variant) pair, in a shuffled order, and times each request on its own; with
thousands of rounds, the median of the per-request ratios against the baseline (``raw``
SQLAlchemy without a ping) and against ``raw+ping`` (MariaDB, PostgreSQL), taken round by
round, is robust against a busy machine: a request slowed by another process is an
outlier, not a shift. Timed per request: wall time and this thread's CPU time.

Also reported, deterministic: Python and C function calls per request inside the WSGI app,
SQL statements per request, and connections checked out by the DB-free view (target: 0,
counted with a pool ``checkout`` listener).

Run from the repository root::

    python benchmarks/request_bench.py                 # SQLite, MariaDB, PostgreSQL
    python benchmarks/request_bench.py --backend mysql --backend postgresql --rounds 2000
    python benchmarks/request_bench.py --driver wsgi   # no test client: the app alone
    python benchmarks/request_bench.py --backend sqlite --rounds 3000
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from _harness import (
    fmt_ratio,
    fmt_us,
    interleave,
    loadavg,
    machine_report,
    markdown_table,
    say,
)
from variants import (
    BASELINE,
    DEFAULT_MYSQL_URL,
    DEFAULT_POSTGRESQL_URL,
    VARIANTS,
    VIEWS,
    BenchApp,
    database_url,
    drop_database,
    make_app,
    prepare_database,
)
from werkzeug.test import EnvironBuilder


def _request(
    bench: BenchApp, view: str, driver: str, checkouts: list[int]
) -> Callable[[], dict[str, float]]:
    """One request of ``view``, timed; through the test client or the bare WSGI call."""
    path = f"/{view}"
    method = "POST" if view == "insert" else "GET"
    statuses: list[str] = []

    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        statuses.append(status)

    if driver == "client":
        client = bench.app.test_client()
        send: Callable[..., Any] = client.post if view == "insert" else client.get

        def serve() -> int:
            return int(send(path).status_code)

    else:
        environ = EnvironBuilder(path=path, method=method).get_environ()

        def serve() -> int:
            body = bench.app({**environ, "wsgi.input": io.BytesIO()}, start_response)
            for _ in body:
                pass
            body.close()  # type: ignore[attr-defined]
            return int(statuses.pop()[:3])

    def run() -> dict[str, float]:
        before = checkouts[0]
        cpu = time.thread_time()
        start = time.perf_counter()
        status = serve()
        elapsed = time.perf_counter() - start
        cpu = time.thread_time() - cpu
        if status != 200:
            raise RuntimeError(f"{bench.variant} {path}: HTTP {status}")
        if view == "none":
            checkouts[1] += checkouts[0] - before
        return {"wall": elapsed, "cpu": cpu}

    return run


def per_request(bench: BenchApp, view: str, what: str, requests: int = 50) -> float:
    """Count, per request served by the WSGI app, either ``"calls"``: Python and C function
    calls (deterministic, unlike time, so small differences between variants show even on
    a busy machine), or ``"statements"``: SQL statements sent. Statements are counted with
    an engine event listener, which adds calls to every execution from then on: count them
    on an app built for that alone."""
    method = "POST" if view == "insert" else "GET"
    environs = [
        EnvironBuilder(path=f"/{view}", method=method).get_environ() for _ in range(requests + 5)
    ]
    statuses: list[str] = []

    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        statuses.append(status)

    def serve(environ: dict[str, Any]) -> None:
        body = bench.app(environ, start_response)
        for _ in body:
            pass
        body.close()  # type: ignore[attr-defined]

    for environ in environs[:5]:
        serve(environ)
    count = 0

    def on_execute(*_: object) -> None:
        nonlocal count
        count += 1

    def profiler(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    if what == "calls":
        sys.setprofile(profiler)
    else:
        sa.event.listen(bench.engine, "before_cursor_execute", on_execute)
    try:
        for environ in environs[5:]:
            serve(environ)
    finally:
        sys.setprofile(None)
        if what != "calls":
            sa.event.remove(bench.engine, "before_cursor_execute", on_execute)
    if any(not status.startswith("200") for status in statuses):
        raise RuntimeError(f"{bench.variant} /{view}: {set(statuses)}")
    return count / requests


DRIVERS = {
    "client": "Flask test client",
    "wsgi": "bare WSGI call (no test client)",
}


def run_backend(backend: str, args: argparse.Namespace, sqlite_dir: str) -> str:
    urls = {
        v: database_url(
            backend,
            v,
            sqlite_dir=sqlite_dir,
            mysql_url=args.mysql_url,
            postgresql_url=args.postgresql_url,
        )
        for v in VARIANTS
    }
    for url in urls.values():
        prepare_database(url)
    benches = {v: make_app(v, backend, urls[v]) for v in VARIANTS}
    # [total checkouts, checkouts during the DB-free view]
    counters: dict[str, list[int]] = {v: [0, 0] for v in VARIANTS}
    for variant, bench in benches.items():
        counter = counters[variant]

        def on_checkout(*_: object, counter: list[int] = counter) -> None:
            counter[0] += 1

        sa.event.listen(bench.engine, "checkout", on_checkout)

    cases = {
        f"{view}/{variant}": _request(benches[variant], view, args.driver, counters[variant])
        for view in VIEWS
        for variant in VARIANTS
    }
    calls = {
        (view, variant): per_request(benches[variant], view, "calls")
        for view in VIEWS
        for variant in VARIANTS
    }
    statements = {}
    for variant in VARIANTS:
        counted = make_app(variant, backend, urls[variant])
        for view in VIEWS:
            statements[view, variant] = per_request(counted, view, "statements")
        counted.engine.dispose()
    say(f"{backend}: {len(cases)} cases x {args.rounds} rounds of one request each")
    results = interleave(cases, args.rounds, warmup=50, collect_garbage=False)
    baseline = BASELINE[backend]
    rows = []
    for view in VIEWS:
        for variant in VARIANTS:
            row: list[object] = [view, variant]
            for metric in ("wall", "cpu"):
                key = f"{view}/{variant}@{metric}"
                base = f"{view}/{baseline}@{metric}"
                ping = f"{view}/raw+ping@{metric}"
                fsa = f"{view}/flask-sqlalchemy@{metric}"
                row += [
                    f"{fmt_us(results.median(key))} ±{results.spread(key) * 50:.0f} %",
                    fmt_ratio(results.ratio(key, base), results.ratio_iqr(key, base)),
                    fmt_ratio(results.ratio(key, ping), results.ratio_iqr(key, ping)),
                    fmt_ratio(results.ratio(key, fsa)),
                ]
            made = calls[view, variant]
            row.append(f"{made:.0f} ({made / calls[view, baseline]:.3f}x)")
            row.append(f"{statements[view, variant]:g}")
            row.append(counters[variant][1] if view == "none" else "")
            rows.append(row)
    for bench in benches.values():
        bench.engine.dispose()
    if not args.keep:
        for url in urls.values():
            drop_database(url)
    headers = [
        "view",
        "variant",
        "wall per request",
        f"wall vs {baseline} (IQR)",
        "wall vs raw+ping (IQR)",
        "wall vs FSA",
        "CPU per request",
        f"CPU vs {baseline} (IQR)",
        "CPU vs raw+ping (IQR)",
        "CPU vs FSA",
        f"calls per request (vs {baseline})",
        "SQL statements per request",
        "checkouts (DB-free view)",
    ]
    return (
        f"### {backend}: in process, {DRIVERS[args.driver]}\n\n"
        f"{args.rounds} interleaved rounds of one request per view and variant;"
        " wall = elapsed time, CPU = this thread's CPU time (excludes the database"
        " server's work and time spent descheduled), medians ± half the interquartile range;"
        " ratios are medians of the per-round ratios (interquartile range of those ratios in"
        " brackets); calls = Python and C function calls inside the WSGI app per request"
        " (deterministic, counted with sys.setprofile outside the timed runs);"
        f" FSA = Flask-SQLAlchemy; load average at end: {loadavg()}\n\n"
        + markdown_table(headers, rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "mysql", "postgresql"), action="append")
    parser.add_argument("--rounds", type=int, default=1000, help="requests per case")
    parser.add_argument("--driver", choices=tuple(DRIVERS), default="client")
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    parser.add_argument("--postgresql-url", default=DEFAULT_POSTGRESQL_URL)
    parser.add_argument("--keep", action="store_true", help="keep the server databases")
    args = parser.parse_args(argv)
    backends = args.backend or ["sqlite", "mysql", "postgresql"]
    print(f"## Per-request overhead, in process: {DRIVERS[args.driver]}\n")
    print("\n".join(machine_report()) + "\n")
    print(f"Command: `python benchmarks/request_bench.py {' '.join(argv or sys.argv[1:])}`\n")
    with tempfile.TemporaryDirectory(prefix="edb-bench-") as sqlite_dir:
        for backend in backends:
            print(run_backend(backend, args, sqlite_dir) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
