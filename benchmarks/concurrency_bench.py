"""How throughput grows with concurrent connections: requests/s at 1, 4 and 16 connections
under gunicorn, with sync and gthread workers, for flask-entitydb and its baseline.

Worker set-ups (2-core machine; pool size matched to what one worker can use at once):

- sync: ``2 * nproc + 1`` workers (gunicorn's recommendation), ``pool_size=1``;
- gthread: ``nproc`` workers x 8 threads, ``pool_size=8``.

The primary-key read view is driven by ``wrk`` for ``--duration`` seconds per
(set-up, connections, variant), all interleaved in shuffled rounds.

Run from the repository root::

    python benchmarks/concurrency_bench.py                  # MariaDB, ~2.5 minutes
    python benchmarks/concurrency_bench.py --backend sqlite --view none
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable

from _harness import interleave, loadavg, machine_report, markdown_table, say
from _servers import Server, run_wrk, start_gunicorn, wrk_path
from variants import BASELINE, DEFAULT_MYSQL_URL, database_url, drop_database, prepare_database

CPUS = os.cpu_count() or 1
SETUPS = {
    "sync": {"worker_class": "sync", "workers": 2 * CPUS + 1, "threads": 1, "pool": 1},
    "gthread": {"worker_class": "gthread", "workers": CPUS, "threads": 8, "pool": 8},
}
CONNECTIONS = (1, 4, 16)


def _case(server: Server, view: str, connections: int, duration: int) -> Callable[[], float]:
    def run() -> float:
        result = run_wrk(
            f"{server.url}/{view}",
            connections=connections,
            threads=2,
            duration=duration,
            post=view == "insert",
        )
        return result.rps

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "mysql"), default="mysql")
    parser.add_argument("--view", choices=("none", "read", "insert"), default="read")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=2, help="seconds per wrk run")
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    args = parser.parse_args(argv)
    wrk_path()
    backend = args.backend
    variants = (BASELINE[backend], "entitydb")
    print("## Throughput vs concurrent connections, gunicorn + wrk\n")
    print("\n".join(machine_report()) + "\n")
    print(f"Command: `python benchmarks/concurrency_bench.py {' '.join(argv or sys.argv[1:])}`\n")
    servers: dict[tuple[str, str], Server] = {}
    with tempfile.TemporaryDirectory(prefix="edb-bench-") as sqlite_dir:
        urls = {
            v: database_url(backend, v, sqlite_dir=sqlite_dir, mysql_url=args.mysql_url)
            for v in variants
        }
        try:
            for variant, url in urls.items():
                prepare_database(url)
                for name, setup in SETUPS.items():
                    servers[name, variant] = start_gunicorn(
                        {
                            "BENCH_VARIANT": variant,
                            "BENCH_BACKEND": backend,
                            "BENCH_URL": url,
                            "BENCH_POOL_SIZE": str(setup["pool"]),
                        },
                        worker_class=str(setup["worker_class"]),
                        workers=int(setup["workers"]),
                        threads=int(setup["threads"]),
                    )
            cases = {
                f"{name}/{connections}/{variant}": _case(
                    servers[name, variant], args.view, connections, args.duration
                )
                for name in SETUPS
                for connections in CONNECTIONS
                for variant in variants
            }
            say(f"{len(cases)} cases x {args.rounds} rounds x {args.duration} s")
            results = interleave(cases, args.rounds, progress=say)
        finally:
            for server in servers.values():
                server.stop()
            for url in urls.values():
                drop_database(url)
    baseline = variants[0]
    rows = []
    for name, setup in SETUPS.items():
        for connections in CONNECTIONS:
            row: list[object] = [
                f"{name} ({setup['workers']} x {setup['threads']}, pool {setup['pool']})",
                connections,
            ]
            for variant in variants:
                key = f"{name}/{connections}/{variant}"
                first = f"{name}/1/{variant}"
                row += [
                    f"{results.median(key):.0f} ±{results.spread(key) * 50:.0f} %",
                    f"{results.median(key) / results.median(first):.2f}x",
                ]
            key = f"{name}/{connections}/entitydb"
            base = f"{name}/{connections}/{baseline}"
            q1, q3 = results.ratio_iqr(key, base)
            row.append(f"{results.ratio(key, base):.3f} ({q1:.2f}-{q3:.2f})")
            rows.append(row)
    headers = [
        "workers",
        "connections",
        f"{baseline} req/s",
        "vs 1 conn.",
        "entitydb req/s",
        "vs 1 conn.",
        f"entitydb / {baseline} req/s (IQR)",
    ]
    print(
        f"### {backend}, view '/{args.view}'\n\n{args.rounds} interleaved rounds of"
        f" {args.duration} s per set-up, connection count and variant; req/s ± half the"
        " interquartile range; ratios are medians of per-round ratios; load average at end:"
        f" {loadavg()}\n\n" + markdown_table(headers, rows) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
