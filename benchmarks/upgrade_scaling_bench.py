"""How ``flask db upgrade`` time grows with the number of revisions: 10, 100 and 1,000
generated revisions from an empty database, flask-entitydb next to Flask-Migrate.

Each run is a fresh ``flask db upgrade`` subprocess; the database is emptied before each
run (not timed). The cost per revision between two sizes,
``(t(n2) - t(n1)) / (n2 - n1)``, shows whether growth is linear (equal per-revision costs)
or worse.

Run from the repository root::

    python benchmarks/upgrade_scaling_bench.py                  # SQLite, ~3 minutes
    python benchmarks/upgrade_scaling_bench.py --backend mysql --counts 10,100
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _harness import interleave, loadavg, machine_report, markdown_table, say
from _migration_apps import (
    drop_database,
    flask,
    flask_env,
    init_migrations,
    reset_database,
    write_project,
    write_revisions,
)
from migrations_bench import database_url
from variants import DEFAULT_MYSQL_URL

TOOLS = ("flask-migrate", "entitydb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "mysql"), default="sqlite")
    parser.add_argument("--counts", default="10,100,1000", help="revision counts")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--entities", type=int, default=20)
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.counts.split(",")]
    print("## `flask db upgrade` time vs number of revisions\n")
    print("\n".join(machine_report()) + "\n")
    print(
        f"Command: `python benchmarks/upgrade_scaling_bench.py {' '.join(argv or sys.argv[1:])}`\n"
    )
    urls: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edb-upbench-") as tmp:
        workdir = Path(tmp)
        write_project(workdir, args.entities)
        cases: dict[str, Callable[[], float]] = {}
        try:
            for tool in TOOLS:
                for count in counts:
                    purpose = f"up{count}"
                    url = database_url(args.backend, tool, purpose, workdir, args.mysql_url)
                    folder = workdir / f"{tool}_{purpose}"
                    write_revisions(init_migrations(tool, workdir, url, folder), count)
                    env = flask_env(workdir, url, folder)
                    urls.append(url)

                    def run(tool: str = tool, url: str = url, env: dict[str, str] = env) -> float:
                        reset_database(url)
                        start = time.perf_counter()
                        flask(tool, ["db", "upgrade"], env, workdir)
                        return time.perf_counter() - start

                    cases[f"{count}/{tool}"] = run
            say(f"{len(cases)} cases x {args.rounds} rounds")
            results = interleave(cases, args.rounds, warmup=0, progress=say)
        finally:
            for url in urls:
                drop_database(url)
    rows = []
    for index, count in enumerate(counts):
        row: list[object] = [count]
        for tool in TOOLS:
            key = f"{count}/{tool}"
            row.append(f"{results.median(key):.2f} s ±{results.spread(key) * 50:.0f} %")
            if index:
                previous = counts[index - 1]
                slope = (results.median(key) - results.median(f"{previous}/{tool}")) / (
                    count - previous
                )
                row.append(f"{slope * 1000:.1f} ms")
            else:
                row.append("")
        q1, q3 = results.ratio_iqr(f"{count}/entitydb", f"{count}/flask-migrate")
        row.append(
            f"{results.ratio(f'{count}/entitydb', f'{count}/flask-migrate'):.2f}x"
            f" ({q1:.2f}-{q3:.2f})"
        )
        rows.append(row)
    headers = [
        "revisions",
        "flask-migrate",
        "per revision since previous size",
        "entitydb",
        "per revision since previous size",
        "entitydb / flask-migrate",
    ]
    print(
        f"### {args.backend}\n\n{args.rounds} interleaved rounds; medians ± half the"
        " interquartile range; ratios are medians of per-round ratios; load average at end:"
        f" {loadavg()}\n\n" + markdown_table(headers, rows) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
