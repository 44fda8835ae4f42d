"""Test-session start-up of the pytest plugin with a long history: 200 revisions, ``pytest
-n 2``, on MariaDB and PostgreSQL.

Per xdist worker it times what the plugin does before the first test can run: making the
worker's database (``entitydb_database``) and bringing its schema to head
(``prepare``). Two kinds of run, interleaved over several rounds:

- ``cold``: ``--entitydb-rebuild``, as a first run (or a changed revision file): one worker
  runs the 200 revisions and keeps a template, the other waits for it and copies it;
- ``warm``: the second run, nothing changed: each worker uses the database it kept from the
  previous run as it is (no migration, no drop, no copy; see ``flask_entitydb._testing.kept``).

Each run's end-of-run lines must say what became of the kept databases (``built``/``copied``
for a cold run, ``reused`` for a warm one), else the benchmark stops.

The app has one table; revision 1 creates it, each later one adds a column. Run from the
repository root::

    python benchmarks/plugin_startup_bench.py                       # both servers, 3 rounds
    python benchmarks/plugin_startup_bench.py --backend postgresql --revisions 200 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import sqlalchemy as sa
from _harness import loadavg, machine_report, markdown_table, say
from variants import DEFAULT_MYSQL_URL, DEFAULT_POSTGRESQL_URL

SERVERS = {"mysql": f"{DEFAULT_MYSQL_URL}/test", "postgresql": f"{DEFAULT_POSTGRESQL_URL}/test"}

APP = """
from flask import Flask

from flask_entitydb import EntityDB

db = EntityDB()


def create_app(url):
    app = Flask(__name__)
    app.config.update(DB_CONNECTION_STRING=url, TESTING=True)
    db.init_app(app)
    return app
"""

CONFTEST = """
import os
import time

import pytest

from startup_app import create_app


@pytest.fixture(scope="session")
def app(entitydb_url):
    return create_app(entitydb_url)


@pytest.fixture(scope="session", autouse=True)
def startup(request):
    start = time.perf_counter()
    database = request.getfixturevalue("entitydb_database")
    database.prepare(request.getfixturevalue("app"))
    elapsed = time.perf_counter() - start
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join(os.environ["STARTUP_TIMES"], worker), "w") as file:
        file.write(repr(elapsed))
"""

TESTS = """
import pytest
import sqlalchemy as sa


@pytest.mark.parametrize("n", range(8))
def test_row(n, entitydb_transaction):
    entitydb_transaction.connection.execute(sa.text("INSERT INTO things (c001) VALUES (1)"))
"""


def entity(columns: int) -> str:
    lines = [f"    c{n:03d}: Mapped[int | None] = mapped_column()" for n in range(1, columns)]
    return (
        textwrap.dedent(
            """
        from sqlalchemy.orm import Mapped, mapped_column

        from flask_entitydb import Entity


        class Thing(Entity):
            __tablename__ = "things"
            id: Mapped[int] = mapped_column(primary_key=True)
        """
        )
        + "\n".join(lines)
        + "\n"
    )


def revision(number: int) -> str:
    down = "None" if number == 1 else f"'r{number - 1:04d}'"
    if number == 1:
        body = "op.create_table('things', sa.Column('id', sa.Integer, primary_key=True))"
        undo = "op.drop_table('things')"
    else:
        body = f"op.add_column('things', sa.Column('c{number - 1:03d}', sa.Integer))"
        undo = f"op.drop_column('things', 'c{number - 1:03d}')"
    return (
        f"import sqlalchemy as sa\nfrom alembic import op\n\nrevision = 'r{number:04d}'\n"
        f"down_revision = {down}\nbranch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n    {body}\n\n\ndef downgrade():\n    {undo}\n"
    )


def write_project(folder: Path, revisions: int) -> None:
    package = folder / "startup_app"
    (package / "entities").mkdir(parents=True)
    (package / "__init__.py").write_text(APP)
    (package / "entities" / "__init__.py").write_text("")
    (package / "entities" / "thing_entity.py").write_text(entity(revisions))
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "test_startup.py").write_text(TESTS)
    (folder / "pytest.ini").write_text("[pytest]\n")
    scratch = f"sqlite:///{folder / 'scratch.sqlite3'}"
    init = "from flask_entitydb import migrations; from startup_app import create_app;"
    init += f" migrations.init(app=create_app({scratch!r}))"
    subprocess.run([sys.executable, "-c", init], cwd=folder, check=True, env=_env(folder))
    versions = package / "migrations" / "versions"
    for number in range(1, revisions + 1):
        (versions / f"r{number:04d}_step.py").write_text(revision(number))


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ENTITYDB_TEST"))}
    env["PYTHONPATH"] = os.pathsep.join([str(folder), os.getcwd(), env.get("PYTHONPATH", "")])
    return env


def admin(url: str, sql: str) -> list[str]:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(sql))
            return [str(row[0]) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def run_session(folder: Path, url: str, *extra: str, reuse: bool | None = None) -> list[float]:
    """Per-worker start-up times of one ``pytest -n 2`` run; ``reuse``: whether every kept
    database must have been reused (``None``: not checked)."""
    times = folder / "times"
    times.mkdir(exist_ok=True)
    for old in times.iterdir():
        old.unlink()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"]
    command += [f"--entitydb-url={url}", *extra]
    env = {**_env(folder), "STARTUP_TIMES": str(times)}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-3000:] + done.stderr[-3000:])
    kept = done.stdout.count("kept test database")
    reused = done.stdout.count(": reused (")
    if reuse is not None and (kept != 2 or (reused == kept) != reuse):
        raise SystemExit(f"unexpected use of the kept databases:\n{done.stdout[-3000:]}")
    return [float(path.read_text()) for path in times.iterdir()]


def bench(backend: str, revisions: int, rounds: int) -> list[list[object]]:
    server = SERVERS[backend]
    name = f"edb_startup_{uuid.uuid4().hex[:8]}"
    admin(server, f"CREATE DATABASE {name}")
    url = sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    samples: dict[str, list[float]] = {"cold": [], "warm": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_project(folder, revisions)
            run_session(folder, url)  # warm-up: imports, the first template
            for number in range(rounds):
                samples["cold"] += run_session(folder, url, "--entitydb-rebuild", reuse=False)
                samples["warm"] += run_session(folder, url, reuse=True)
                say(f"{backend}: round {number + 1}/{rounds}, load {loadavg()}")
    finally:
        force = " WITH (FORCE)" if backend == "postgresql" else ""
        pattern = name.replace("_", "\\_") + "\\_%"
        listing = (
            "SELECT datname FROM pg_database"
            if backend == "postgresql"
            else "SELECT schema_name FROM information_schema.schemata"
        )
        column = "datname" if backend == "postgresql" else "schema_name"
        made = admin(server, f"{listing} WHERE {column} LIKE '{pattern}'")
        for database in [name, *made]:
            admin(server, f"DROP DATABASE IF EXISTS {database}{force}")
    rows: list[list[object]] = []
    for kind, values in samples.items():
        rows.append(
            [
                backend,
                kind,
                len(values),
                f"{statistics.median(values):.3f} s",
                f"{min(values):.3f} to {max(values):.3f} s",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["mysql", "postgresql", "both"], default="both")
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    backends = ["mysql", "postgresql"] if args.backend == "both" else [args.backend]
    lines = machine_report()
    rows = [row for backend in backends for row in bench(backend, args.revisions, args.rounds)]
    print("\n".join(lines))
    print(f"- {args.revisions} revisions, pytest -n 2, {args.rounds} rounds\n")
    print(markdown_table(["server", "run", "worker start-ups", "median per worker", "range"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
