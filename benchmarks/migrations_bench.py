"""``flask db`` against Flask-Migrate and Flask-Alembic, each command in a fresh ``flask``
subprocess (what a user or a deployment runs), interleaved in shuffled rounds.

Measured per tool and backend (the same entities and revision files; each tool has its
own migrations folder and database):

- ``flask db --help``: start-up latency;
- ``flask db current``: against a database holding the ``--entities`` tables;
- ``flask db upgrade``: from an empty database through ``--revisions`` generated revisions
  (each creates one table); the reset before each run is not timed;
- autogenerate (``flask db migrate``; Flask-Alembic: ``flask db revision``) with one new
  entity against the database holding the ``--entities`` tables; the written revision is
  deleted after each run.

Run from the repository root::

    python benchmarks/migrations_bench.py                       # SQLite and MariaDB
    python benchmarks/migrations_bench.py --backend sqlite --rounds 5
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from _harness import interleave, loadavg, machine_report, markdown_table, say
from _migration_apps import (
    TOOLS,
    create_entity_tables,
    drop_database,
    flask,
    flask_env,
    init_migrations,
    reset_database,
    write_empty_revision,
    write_project,
    write_revisions,
)
from variants import DEFAULT_MYSQL_URL

BASELINE = "flask-migrate"
AUTOGENERATE = {
    "entitydb": ["db", "migrate", "-m", "new entity"],
    "flask-migrate": ["db", "migrate", "-m", "new entity"],
    "flask-alembic": ["db", "revision", "new entity"],
}
MEASURES = ("help", "current", "upgrade", "autogenerate")


def database_url(backend: str, tool: str, purpose: str, workdir: Path, mysql_url: str) -> str:
    """A database of its own for each tool and purpose."""
    slug = f"{tool.replace('-', '_')}_{purpose}"
    if backend == "sqlite":
        return f"sqlite:///{workdir / (slug + '.sqlite3')}"
    return (
        sa.make_url(mysql_url)
        .set(database=f"edb_migbench_{slug}")
        .render_as_string(hide_password=False)
    )


def _timed(run: Callable[[], object]) -> dict[str, float]:
    """Wall time of ``run()`` and the CPU time (user + system) of the subprocesses it
    waited for: on a shared machine the CPU time is the steadier of the two (it leaves
    out the time other processes held the CPUs)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu}


Measured = dict[str, float]


def prepare(
    backend: str, workdir: Path, args: argparse.Namespace
) -> tuple[dict[str, Callable[[], Measured]], list[str]]:
    """Set up every tool's folders and databases; return the cases and the URLs to drop."""
    cases: dict[str, Callable[[], Measured]] = {}
    urls: list[str] = []
    for tool in TOOLS:
        # upgrade: N generated revisions, an empty database before each run
        up_url = database_url(backend, tool, "upgrade", workdir, args.mysql_url)
        up_dir = workdir / f"{backend}_{tool}_upgrade"
        write_revisions(init_migrations(tool, workdir, up_url, up_dir), args.revisions)
        up_env = flask_env(workdir, up_url, up_dir)
        urls.append(up_url)

        # autogenerate and current: a database holding the entity tables, at head
        ag_url = database_url(backend, tool, "autogen", workdir, args.mysql_url)
        ag_dir = workdir / f"{backend}_{tool}_autogen"
        ag_versions = init_migrations(tool, workdir, ag_url, ag_dir)
        write_empty_revision(ag_versions)
        reset_database(ag_url)
        create_entity_tables(ag_url, workdir)
        ag_env = flask_env(workdir, ag_url, ag_dir)
        flask(
            tool, ["db", "stamp", "head" if tool != "flask-alembic" else "heads"], ag_env, workdir
        )
        urls.append(ag_url)
        before = set(ag_versions.glob("*.py"))

        def upgrade(tool: str = tool, url: str = up_url, env: dict[str, str] = up_env) -> Measured:
            reset_database(url)
            return _timed(lambda: flask(tool, ["db", "upgrade"], env, workdir))

        def autogenerate(
            tool: str = tool,
            env: dict[str, str] = ag_env,
            versions: Path = ag_versions,
            before: set[Path] = before,
        ) -> Measured:
            elapsed = _timed(lambda: flask(tool, AUTOGENERATE[tool], env, workdir))
            written = set(versions.glob("*.py")) - before
            if len(written) != 1 or "new_one" not in next(iter(written)).read_text():
                raise RuntimeError(f"{tool}: autogenerate did not write the new table")
            for path in written:
                path.unlink()
            return elapsed

        cases[f"help/{tool}"] = lambda tool=tool, env=ag_env: _timed(
            lambda: flask(tool, ["db", "--help"], env, workdir)
        )
        cases[f"current/{tool}"] = lambda tool=tool, env=ag_env: _timed(
            lambda: flask(tool, ["db", "current"], env, workdir)
        )
        cases[f"upgrade/{tool}"] = upgrade
        cases[f"autogenerate/{tool}"] = autogenerate
    return cases, urls


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> str:
    say(f"{backend}: preparing folders and databases")
    cases, urls = prepare(backend, workdir, args)
    try:
        say(f"{backend}: {len(cases)} cases x {args.rounds} rounds")
        results = interleave(
            cases, args.rounds, warmup=0, progress=lambda line: say(f"{backend}: {line}")
        )
    finally:
        for url in urls:
            drop_database(url)
    rows = []
    labels = {
        "help": "`flask db --help`",
        "current": f"`flask db current` ({args.entities} tables)",
        "upgrade": f"`flask db upgrade`, empty -> {args.revisions} revisions",
        "autogenerate": f"autogenerate 1 new entity ({args.entities} tables)",
    }
    for measure in MEASURES:
        row: list[object] = [labels[measure]]
        for tool in TOOLS:
            key = f"{measure}/{tool}@wall"
            row.append(f"{results.median(key):.2f} s ±{results.spread(key) * 50:.0f} %")
        for tool, metric in (("flask-alembic", "wall"), ("entitydb", "wall"), ("entitydb", "cpu")):
            key, base = f"{measure}/{tool}@{metric}", f"{measure}/{BASELINE}@{metric}"
            q1, q3 = results.ratio_iqr(key, base)
            row.append(f"{results.ratio(key, base):.2f}x ({q1:.2f}-{q3:.2f})")
        rows.append(row)
    headers = [
        "command",
        *TOOLS,
        "flask-alembic / flask-migrate",
        "entitydb / flask-migrate",
        "entitydb / flask-migrate, CPU time",
    ]
    return (
        f"### {backend}\n\n{args.rounds} interleaved rounds; medians ± half the interquartile"
        " range; ratios are medians of per-round ratios (interquartile range in brackets);"
        f" load average at end: {loadavg()}\n\n" + markdown_table(headers, rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "mysql"), action="append")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--revisions", type=int, default=100)
    parser.add_argument("--entities", type=int, default=150)
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    args = parser.parse_args(argv)
    backends = args.backend or ["sqlite", "mysql"]
    print("## `flask db` commands against Flask-Migrate and Flask-Alembic\n")
    print("\n".join(machine_report()) + "\n")
    print(f"Command: `python benchmarks/migrations_bench.py {' '.join(argv or sys.argv[1:])}`\n")
    with tempfile.TemporaryDirectory(prefix="edb-migbench-") as tmp:
        workdir = Path(tmp)
        write_project(workdir, args.entities)
        for backend in backends:
            print(run_backend(backend, args, workdir) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
