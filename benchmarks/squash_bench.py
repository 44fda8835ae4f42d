"""A new database's ``flask db upgrade`` through ``--revisions`` generated revisions,
against the same upgrade after ``flask db squash``: the squashed revision alone.
Flask-Migrate's upgrade of the same history is the reference. ``--history tables``: each
revision creates a table; ``--history columns`` (issue 28's history): the first creates a
table and each other one adds a column to it.

Each run is a fresh ``flask db upgrade`` subprocess on an emptied database (the reset is
not timed); the cases are interleaved in shuffled rounds. ``flask db squash`` itself (the
history and the squashed revision each built on a scratch database, then compared) is
timed once.

Run from the repository root::

    python benchmarks/squash_bench.py                           # SQLite and MariaDB
    python benchmarks/squash_bench.py --backend sqlite --revisions 200 --rounds 5
    python benchmarks/squash_bench.py --history columns
"""

from __future__ import annotations

import argparse
import shutil
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

CASES = ("flask-migrate", "entitydb", "entitydb squashed")

_COLUMN_REVISION = '''\
"""generated revision {number}"""

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    {upgrade}


def downgrade():
    {downgrade}
'''


def write_column_revisions(versions: Path, count: int) -> None:
    """``count`` chained revisions: one table, then a column added to it by each."""
    down = None
    for number in range(count):
        rev = f"col{number:05d}"
        if number == 0:
            up = 'op.create_table("wide", sa.Column("id", sa.Integer(), primary_key=True))'
            back = 'op.drop_table("wide")'
        else:
            up = f'op.add_column("wide", sa.Column("c{number:05d}", sa.Integer()))'
            back = f'op.drop_column("wide", "c{number:05d}")'
        text = _COLUMN_REVISION.format(
            number=number, rev=rev, down=down, upgrade=up, downgrade=back
        )
        (versions / f"{rev}_generated.py").write_text(text)
        down = rev


def _upgrade(tool: str, url: str, env: dict[str, str], workdir: Path) -> Callable[[], float]:
    def run() -> float:
        reset_database(url)
        start = time.perf_counter()
        flask(tool, ["db", "upgrade"], env, workdir)
        return time.perf_counter() - start

    return run


def measure(backend: str, args: argparse.Namespace) -> str:
    urls: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edb-squashbench-") as tmp:
        workdir = Path(tmp)
        write_project(workdir, 1)
        cases: dict[str, Callable[[], float]] = {}
        squash_time = 0.0
        try:
            for case in CASES:
                tool = "flask-migrate" if case == "flask-migrate" else "entitydb"
                slug = case.replace(" ", "_").replace("-", "_")
                url = database_url(backend, tool, f"sq_{slug}", workdir, args.mysql_url)
                folder = workdir / f"migrations_{slug}"
                versions = init_migrations(tool, workdir, url, folder)
                if args.history == "columns":
                    write_column_revisions(versions, args.revisions)
                else:
                    write_revisions(versions, args.revisions)
                env = flask_env(workdir, url, folder)
                urls.append(url)
                if case == "entitydb squashed":
                    reset_database(url)
                    start = time.perf_counter()
                    flask(tool, ["db", "squash"], env, workdir)
                    squash_time = time.perf_counter() - start
                    assert any((folder / "squashed").glob("*.py"))
                cases[case] = _upgrade(tool, url, env, workdir)
            say(f"{backend}: {len(cases)} cases x {args.rounds} rounds")
            results = interleave(cases, args.rounds, warmup=0, progress=say)
        finally:
            for url in urls:
                drop_database(url)
            shutil.rmtree(workdir, ignore_errors=True)
    rows = [
        [
            case,
            f"{results.median(case):.2f} s ±{results.spread(case) * 50:.0f} %",
            f"{results.ratio(case, 'entitydb'):.2f}x",
            f"{results.ratio(case, 'flask-migrate'):.2f}x",
        ]
        for case in CASES
    ]
    headers = ["new database, `flask db upgrade`", "time", "/ entitydb", "/ flask-migrate"]
    return (
        f"### {backend}, {args.revisions} revisions ({args.history})\n\n"
        f"{args.rounds} interleaved rounds;"
        " medians ± half the interquartile range; ratios are medians of per-round ratios;"
        f" load average at end: {loadavg()}. `flask db squash` (both scratch databases and"
        f" the comparison) took {squash_time:.2f} s once.\n\n"
        + markdown_table(headers, rows)
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "mysql"), action="append")
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--history", choices=("tables", "columns"), default="tables")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    args = parser.parse_args(argv)
    print("## A new database: the history against its squashed revision\n")
    print("\n".join(machine_report()) + "\n")
    print(f"Command: `python benchmarks/squash_bench.py {' '.join(argv or sys.argv[1:])}`\n")
    for backend in args.backend or ("sqlite", "mysql"):
        print(measure(backend, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
