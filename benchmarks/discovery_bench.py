"""Entity discovery cost: creating an app whose 500 entity modules are discovered, against
importing the same 500 modules directly.

The script generates a package with 500 ``*_entity.py`` modules (10 subpackages of 50, one
entity of 6 columns each, plus a non-entity module per subpackage that discovery must skip)
in a temporary folder. Each round runs both cases, in a shuffled order, each in a fresh
Python process so every import is cold in that process (the ``.pyc`` files are written by
the warm-up round, as they are on a deployed app). Each child process imports Flask and
flask-entitydb first, untimed, then times only:

- ``direct``: ``importlib.import_module`` of the 500 modules, in sorted order;
- ``discovery``: ``Flask(...)`` plus ``EntityDB(app)`` with
  ``ENTITYDB_ENTITY_PACKAGES`` naming the package (engine set-up included).

Reported: the median of each and the median of the per-round ratio discovery / direct, in
wall time (the target) and in the child's CPU time (less disturbed by other load on a
shared machine). Target: <= 1.15x.

Run from the repository root::

    python benchmarks/discovery_bench.py
    python benchmarks/discovery_bench.py --rounds 25 --modules 500
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from _harness import (
    Results,
    fmt_ratio,
    interleave,
    loadavg,
    machine_report,
    markdown_table,
    say,
)

PACKAGE = "discobench"
GROUPS = 10
TARGET = 1.15

ENTITY = """\
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from flask_entitydb import Entity


class Thing{n:03d}(Entity):
    __tablename__ = "thing_{n:03d}"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), index=True)
    note: Mapped[str | None]
    count: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created: Mapped[datetime | None]
"""

CHILD = textwrap.dedent(
    """\
    import importlib, sys, time
    from flask import Flask
    import flask_entitydb

    mode, names = sys.argv[1], sys.argv[2].split(",")
    if mode == "direct":
        start, cpu = time.perf_counter(), time.process_time()
        for name in names:
            importlib.import_module(name)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        found = len(flask_entitydb.Entity.metadata.tables)
    else:
        start, cpu = time.perf_counter(), time.process_time()
        app = Flask("discobench_app")
        app.config.update(
            DB_CONNECTION_STRING="sqlite://",
            ENTITYDB_ENTRY_POINTS=[],
            ENTITYDB_ENTITY_PACKAGES=[sys.argv[3]],
        )
        db = flask_entitydb.EntityDB(app)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        found = len(db.state(app).discovery.entities)
    if found != len(names):
        sys.exit(f"{mode}: expected {len(names)} entities, found {found}")
    print(elapsed, cpu)
    """
)


def generate(root: Path, modules: int) -> list[str]:
    """Write the package; return the entity module names in sorted order."""
    entities = root / PACKAGE / "entities"
    entities.mkdir(parents=True)
    (root / PACKAGE / "__init__.py").write_text("")
    (entities / "__init__.py").write_text("")
    names = []
    for n in range(modules):
        group = entities / f"group{n % GROUPS:02d}"
        if not group.exists():
            group.mkdir()
            (group / "__init__.py").write_text("")
            (group / "helpers.py").write_text("raise RuntimeError('not an entity module')\n")
        (group / f"m{n:03d}_entity.py").write_text(ENTITY.format(n=n))
        names.append(f"{PACKAGE}.entities.{group.name}.m{n:03d}_entity")
    return sorted(names, key=lambda name: name.split("."))


def child(root: Path, mode: str, names: list[str], cpu_times: list[float]) -> float:
    """Run one case in a fresh interpreter; return its wall time, append its CPU time."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("DB_CONNECTION_STRING", None)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, ",".join(names), f"{PACKAGE}.entities"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{mode} child failed:\n{result.stderr}")
    wall, cpu = result.stdout.split()
    cpu_times.append(float(cpu))
    return float(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--modules", type=int, default=500)
    args = parser.parse_args()

    report = machine_report()
    with tempfile.TemporaryDirectory(prefix="discobench-") as tmp:
        root = Path(tmp)
        names = generate(root, args.modules)
        cpu: dict[str, list[float]] = {"direct": [], "discovery": []}
        results = interleave(
            {
                "direct": lambda: child(root, "direct", names, cpu["direct"]),
                "discovery": lambda: child(root, "app", names, cpu["discovery"]),
            },
            rounds=args.rounds,
            warmup=1,
            progress=say,
        )
    # the same rounds, measured in CPU time of the child (less disturbed by other load)
    cpu_results = Results({case: times[1:] for case, times in cpu.items()})  # minus warm-up

    ratio = results.ratio("discovery", "direct")
    cpu_ratio = cpu_results.ratio("discovery", "direct")
    rows = [
        (
            "direct import",
            f"{results.median('direct') * 1e3:.0f} ms",
            "1.000x (baseline)",
            f"{cpu_results.median('direct') * 1e3:.0f} ms",
            "1.000x (baseline)",
        ),
        (
            "app creation with discovery",
            f"{results.median('discovery') * 1e3:.0f} ms",
            fmt_ratio(ratio, results.ratio_iqr("discovery", "direct")),
            f"{cpu_results.median('discovery') * 1e3:.0f} ms",
            fmt_ratio(cpu_ratio, cpu_results.ratio_iqr("discovery", "direct")),
        ),
    ]
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"## Discovery: {args.modules} entity modules, {args.rounds} rounds\n")
    print("\n".join(report))
    print(f"- load average at end: {loadavg()}\n")
    headers = ("case", "wall median", "wall ratio (quartiles)", "CPU median", "CPU ratio")
    print(markdown_table(headers, rows))
    print(
        f"\nWall-time ratio {ratio:.3f}x {verdict} the target of {TARGET:.2f}x"
        f" (CPU-time ratio {cpu_ratio:.3f}x)."
    )


if __name__ == "__main__":
    main()
