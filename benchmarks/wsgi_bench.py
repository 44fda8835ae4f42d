"""Per-request overhead under a real WSGI server: gunicorn (one sync worker) driven by
``wrk`` over loopback with one connection.

One gunicorn per variant runs for the whole benchmark; each round drives every
(view, variant) pair for ``--duration`` seconds in a shuffled order. Two measurements per
run: time per request (1 / requests per second) and the gunicorn worker's CPU time per
request (from ``/proc``, much less disturbed by other load than wall time).

Run from the repository root::

    python benchmarks/wsgi_bench.py                    # SQLite and MariaDB, ~3 minutes
    python benchmarks/wsgi_bench.py --backend mysql --rounds 9 --duration 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable

from _harness import fmt_ratio, fmt_us, interleave, loadavg, machine_report, markdown_table, say
from _servers import Server, run_wrk, start_gunicorn, wrk_path
from variants import (
    BASELINE,
    DEFAULT_MYSQL_URL,
    VARIANTS,
    VIEWS,
    database_url,
    drop_database,
    prepare_database,
)


def _case(server: Server, view: str, duration: float) -> Callable[[], dict[str, float]]:
    def run() -> dict[str, float]:
        cpu = server.cpu_seconds()
        result = run_wrk(f"{server.url}/{view}", duration=duration, post=view == "insert")
        cpu = server.cpu_seconds() - cpu
        return {"wall": 1 / result.rps, "cpu": cpu / result.requests}

    return run


def run_backend(backend: str, args: argparse.Namespace, sqlite_dir: str) -> str:
    variants = [v for v in VARIANTS if v in args.variants or v == BASELINE[backend]]
    if "flask-sqlalchemy" not in variants:
        variants.append("flask-sqlalchemy")
    views = args.views
    urls = {
        v: database_url(backend, v, sqlite_dir=sqlite_dir, mysql_url=args.mysql_url)
        for v in variants
    }
    servers: dict[str, Server] = {}
    try:
        for variant, url in urls.items():
            prepare_database(url)
            servers[variant] = start_gunicorn(
                {"BENCH_VARIANT": variant, "BENCH_BACKEND": backend, "BENCH_URL": url}
            )
        cases = {
            f"{view}/{variant}": _case(servers[variant], view, args.duration)
            for view in views
            for variant in variants
        }
        say(f"{backend}: {len(cases)} cases x {args.rounds} rounds x {args.duration} s")
        results = interleave(
            cases, args.rounds, warmup=0, progress=lambda line: say(f"{backend}: {line}")
        )
    finally:
        for server in servers.values():
            server.stop()
        if not args.keep:
            for url in urls.values():
                drop_database(url)
    baseline = BASELINE[backend]
    rows = []
    for view in views:
        for variant in variants:
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
            rows.append(row)
    headers = [
        "view",
        "variant",
        "time per request",
        f"time vs {baseline} (IQR)",
        "time vs FSA",
        "worker CPU per request",
        f"CPU vs {baseline} (IQR)",
        "CPU vs FSA",
    ]
    return (
        f"### {backend}: gunicorn (1 sync worker) + wrk, 1 connection\n\n"
        f"{args.rounds} interleaved rounds of {args.duration} s per view and variant;"
        " time per request = 1 / requests per second; worker CPU = user + system time of"
        " the gunicorn worker process; each ± half its interquartile range; ratios are"
        " medians of per-round ratios (interquartile range in brackets); FSA ="
        f" Flask-SQLAlchemy; load average at end: {loadavg()}\n\n" + markdown_table(headers, rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "mysql"), action="append")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=1, help="seconds per wrk run")
    parser.add_argument(
        "--variants",
        type=lambda text: text.split(","),
        default=list(VARIANTS),
        help="comma-separated subset (the baseline and flask-sqlalchemy always run)",
    )
    parser.add_argument("--views", type=lambda text: text.split(","), default=list(VIEWS))
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    parser.add_argument("--keep", action="store_true", help="keep the MariaDB databases")
    args = parser.parse_args(argv)
    wrk_path()
    backends = args.backend or ["sqlite", "mysql"]
    print("## Per-request overhead, gunicorn + wrk\n")
    print("\n".join(machine_report()) + "\n")
    print(f"Command: `python benchmarks/wsgi_bench.py {' '.join(argv or sys.argv[1:])}`\n")
    with tempfile.TemporaryDirectory(prefix="edb-bench-") as sqlite_dir:
        for backend in backends:
            print(run_backend(backend, args, sqlite_dir) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
