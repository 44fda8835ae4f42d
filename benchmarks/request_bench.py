"""Per-request overhead through Flask's in-process test client.

Every variant of ``variants.py`` serves the same three views; each round runs a batch of
requests of every (view, variant) pair in a shuffled order, and the ratios are taken against
the matching baseline of the same round (SQLite: ``raw``; MariaDB: ``raw+ping``). A pool
``checkout`` listener counts connections checked out by the DB-free view (target: 0).

Run from the repository root::

    python benchmarks/request_bench.py                 # SQLite and MariaDB
    python benchmarks/request_bench.py --backend sqlite --rounds 25
"""

from __future__ import annotations

import argparse
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
    VARIANTS,
    VIEWS,
    BenchApp,
    database_url,
    drop_database,
    make_app,
    prepare_database,
)
from werkzeug.test import EnvironBuilder


def _batch(
    bench: BenchApp, view: str, requests: int, checkouts: list[int]
) -> Callable[[], dict[str, float]]:
    client = bench.app.test_client()
    method: Callable[..., Any] = client.post if view == "insert" else client.get
    path = f"/{view}"

    def run() -> dict[str, float]:
        before = checkouts[0]
        cpu = time.process_time()
        start = time.perf_counter()
        for _ in range(requests):
            response = method(path)
            if response.status_code != 200:
                raise RuntimeError(f"{bench.variant} {path}: HTTP {response.status_code}")
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        if view == "none":
            checkouts[1] += checkouts[0] - before
        return {"wall": elapsed / requests, "cpu": cpu / requests}

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


def run_backend(backend: str, args: argparse.Namespace, sqlite_dir: str) -> str:
    urls = {
        v: database_url(backend, v, sqlite_dir=sqlite_dir, mysql_url=args.mysql_url)
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
        f"{view}/{variant}": _batch(benches[variant], view, args.requests, counters[variant])
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
    say(f"{backend}: {len(cases)} cases x {args.rounds} rounds x {args.requests} requests")
    results = interleave(cases, args.rounds, progress=lambda line: say(f"{backend}: {line}"))
    baseline = BASELINE[backend]
    rows = []
    for view in VIEWS:
        for variant in VARIANTS:
            row: list[object] = [view, variant]
            for metric in ("wall", "cpu"):
                key = f"{view}/{variant}@{metric}"
                base = f"{view}/{baseline}@{metric}"
                fsa = f"{view}/flask-sqlalchemy@{metric}"
                row += [
                    f"{fmt_us(results.median(key))} ±{results.spread(key) * 50:.0f} %",
                    fmt_ratio(results.ratio(key, base), results.ratio_iqr(key, base)),
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
        "wall vs FSA",
        "CPU per request",
        f"CPU vs {baseline} (IQR)",
        "CPU vs FSA",
        f"calls per request (vs {baseline})",
        "SQL statements per request",
        "checkouts (DB-free view)",
    ]
    return (
        f"### {backend}: in-process test client\n\n"
        f"{args.rounds} interleaved rounds of {args.requests} requests per view and variant;"
        " wall = elapsed time, CPU = this process's CPU time (excludes the database"
        " server's work and time spent descheduled), each ± half its interquartile range;"
        " ratios are medians of per-round ratios (interquartile range of those ratios in"
        " brackets); calls = Python and C function calls inside the WSGI app per request"
        " (deterministic, counted with sys.setprofile outside the timed runs);"
        f" FSA = Flask-SQLAlchemy; load average at end: {loadavg()}\n\n"
        + markdown_table(headers, rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "mysql"), action="append")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=100, help="requests per batch")
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    parser.add_argument("--keep", action="store_true", help="keep the MariaDB databases")
    args = parser.parse_args(argv)
    backends = args.backend or ["sqlite", "mysql"]
    print("## Per-request overhead, in-process test client\n")
    print("\n".join(machine_report()) + "\n")
    print(f"Command: `python benchmarks/request_bench.py {' '.join(argv or sys.argv[1:])}`\n")
    with tempfile.TemporaryDirectory(prefix="edb-bench-") as sqlite_dir:
        for backend in backends:
            print(run_backend(backend, args, sqlite_dir) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
