"""``flask db migrate`` and ``flask db lint`` on long histories (issue 28), flask-entitydb
next to Flask-Migrate's ``flask db migrate`` on the same history, in interleaved rounds.

Per backend (MariaDB, PostgreSQL) and history size N (10, 200, 1,000 by default): one
table ``wide`` built by N revisions (the first creates it with column ``c0000``, each
later one adds a column), and an entity with one column more (``c_new``). Every tool has
its own migrations folder (written by its own ``flask db init``, holding the same revision
files) and its own database at head: the table is created with its N columns and the
database stamped, which is what upgrading through the history leaves (without the minutes
of set-up that 1,000 ``ALTER TABLE`` take).

Cases, each a fresh ``flask`` subprocess:

- ``migrate/flask-migrate`` and ``migrate/entitydb``: ``flask db migrate`` writing the new
  column (flask-entitydb also judges it on the server and lints it); the file written is
  deleted afterwards;
- ``lint/entitydb``: ``flask db lint`` on a folder where that revision is written and not
  applied (the default: the revisions the database lacks).

Run from the repository root::

    python benchmarks/history_bench.py                          # MariaDB and PostgreSQL
    python benchmarks/history_bench.py --backend mysql --sizes 10,200 --rounds 3
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from _harness import interleave, loadavg, machine_report, markdown_table, say
from _migration_apps import flask_env
from variants import DEFAULT_MYSQL_URL, DEFAULT_POSTGRESQL_URL

TOOLS = ("flask-migrate", "entitydb")

_APPS = '''\
"""App factories of the history benchmark (generated)."""

import importlib
import os

from flask import Flask

ENTITIES = os.environ["BENCH_ENTITIES"]


def entitydb():
    from flask_entitydb import EntityDB

    app = Flask(__name__)
    app.config.update(
        DB_CONNECTION_STRING=os.environ["BENCH_DB_URL"],
        ENTITYDB_ENTITY_PACKAGES=[ENTITIES],
        ENTITYDB_MIGRATIONS_DIR=os.environ["BENCH_MIGRATIONS"],
    )
    EntityDB(app)
    return app


def flask_migrate():
    from flask_migrate import Migrate
    from flask_sqlalchemy import SQLAlchemy

    from flask_entitydb import Entity

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BENCH_DB_URL"]
    importlib.import_module(ENTITIES + ".wide_entity")
    db = SQLAlchemy(app, metadata=Entity.metadata)
    Migrate(app, db, directory=os.environ["BENCH_MIGRATIONS"])
    return app
'''

_ENTITY = '''\
"""The wide table: {count} columns from the history, and c_new."""

import sqlalchemy as sa
from sqlalchemy.orm import mapped_column

from flask_entitydb import Entity

_columns = {{
    f"c{{number:04d}}": mapped_column(sa.Integer, nullable=True) for number in range({count})
}}
Wide = type(
    "Wide",
    (Entity,),
    {{
        "__tablename__": "wide",
        "__module__": __name__,
        "id": mapped_column(sa.Integer, primary_key=True),
        **_columns,
        "c_new": mapped_column(sa.Integer, nullable=True),
    }},
)
'''

_REVISION = '''\
"""history {number}

Revision ID: {rev}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down_repr}
branch_labels = None
depends_on = None


def upgrade():
{body}


def downgrade():
    pass
'''

FACTORY_APPS = "histbench_apps"


def _rev(number: int) -> str:
    return f"h{number:07d}"


def write_history(versions: Path, count: int) -> str:
    """``count`` revisions building ``wide``; the head's id."""
    for number in range(count):
        if number == 0:
            body = (
                '    op.create_table("wide", sa.Column("id", sa.Integer(), primary_key=True),'
                ' sa.Column("c0000", sa.Integer(), nullable=True))'
            )
        else:
            body = (
                f'    op.add_column("wide", sa.Column("c{number:04d}", sa.Integer(),'
                " nullable=True))"
            )
        down = _rev(number - 1) if number else None
        (versions / f"{_rev(number)}_history.py").write_text(
            _REVISION.format(
                number=number,
                rev=_rev(number),
                down=down or "",
                down_repr=repr(down),
                body=body,
            )
        )
    return _rev(count - 1)


def write_pending(versions: Path, head: str) -> None:
    """The revision adding ``c_new``, not applied (what ``lint`` judges)."""
    (versions / "pending_c_new.py").write_text(
        _REVISION.format(
            number="pending",
            rev="pending",
            down=head,
            down_repr=repr(head),
            body='    op.add_column("wide", sa.Column("c_new", sa.Integer(), nullable=True))',
        )
    )


def _admin(url: sa.URL) -> sa.Engine:
    database = "postgres" if url.get_backend_name() == "postgresql" else ""
    return sa.create_engine(url.set(database=database), isolation_level="AUTOCOMMIT")


def reset_database(url: str, columns: int) -> None:
    """An empty database at ``url`` holding ``wide`` with ``columns`` history columns."""
    parsed = sa.make_url(url)
    admin = _admin(parsed)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {parsed.database}")
        connection.exec_driver_sql(f"CREATE DATABASE {parsed.database}")
    admin.dispose()
    metadata = sa.MetaData()
    sa.Table(
        "wide",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        *[sa.Column(f"c{number:04d}", sa.Integer, nullable=True) for number in range(columns)],
    )
    engine = sa.create_engine(parsed)
    metadata.create_all(engine)
    engine.dispose()


def drop_database(url: str) -> None:
    parsed = sa.make_url(url)
    admin = _admin(parsed)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {parsed.database}")
    admin.dispose()


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def prepare(
    backend: str, server: str, size: int, workdir: Path
) -> tuple[dict[str, Callable[[], float]], list[str]]:
    """The folders and databases of one size; the cases and the URLs to drop."""
    package = f"histbench_{size}"
    entities = workdir / package / "entities"
    entities.mkdir(parents=True)
    (workdir / package / "__init__.py").write_text("")
    (entities / "__init__.py").write_text("")
    (entities / "wide_entity.py").write_text(_ENTITY.format(count=size))
    cases: dict[str, Callable[[], float]] = {}
    urls: list[str] = []
    for tool, purpose in (
        ("flask-migrate", "migrate"),
        ("entitydb", "migrate"),
        ("entitydb", "lint"),
    ):
        slug = f"edb_histbench_{backend}_{size}_{tool.replace('-', '_')}_{purpose}"
        url = sa.make_url(server).set(database=slug).render_as_string(hide_password=False)
        urls.append(url)
        folder = workdir / slug
        env = {**flask_env(workdir, url, folder), "BENCH_ENTITIES": package + ".entities"}
        _init(tool, env, workdir)
        versions = folder / "versions"
        head = write_history(versions, size)
        reset_database(url, size)
        _flask(tool, ["db", "stamp", "head"], env, workdir)
        if purpose == "lint":
            write_pending(versions, head)
            cases[f"lint/{size}/{tool}"] = lambda env=env: _timed(
                lambda: _flask("entitydb", ["db", "lint"], env, workdir)
            )
            continue
        before = set(versions.glob("*.py"))

        def migrate(
            tool: str = tool,
            env: dict[str, str] = env,
            versions: Path = versions,
            before: set[Path] = before,
        ) -> float:
            elapsed = _timed(lambda: _flask(tool, ["db", "migrate", "-m", "c new"], env, workdir))
            written = set(versions.glob("*.py")) - before
            if len(written) != 1 or "c_new" not in next(iter(written)).read_text():
                raise RuntimeError(f"{tool}: migrate did not write the new column")
            for path in written:
                path.unlink()
            return elapsed

        cases[f"migrate/{size}/{tool}"] = migrate
    return cases, urls


def _flask(tool: str, args: list[str], env: dict[str, str], workdir: Path) -> object:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", f"{FACTORY_APPS}:{tool.replace('-', '_')}", *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode not in (0, 1) or (result.returncode == 1 and args[1] != "lint"):
        raise RuntimeError(
            f"{tool}: flask {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def _init(tool: str, env: dict[str, str], workdir: Path) -> None:
    _flask(tool, ["db", "init"], env, workdir)


def run_backend(backend: str, server: str, args: argparse.Namespace, workdir: Path) -> str:
    cases: dict[str, Callable[[], float]] = {}
    urls: list[str] = []
    try:
        for size in args.sizes:
            say(f"{backend}: preparing N = {size}")
            found, dropped = prepare(backend, server, size, workdir)
            cases.update(found)
            urls += dropped
        say(f"{backend}: {len(cases)} cases x {args.rounds} rounds")
        results = interleave(
            cases, args.rounds, warmup=0, progress=lambda line: say(f"{backend}: {line}")
        )
    finally:
        for url in urls:
            drop_database(url)
    rows = []
    for size in args.sizes:
        base = f"migrate/{size}/flask-migrate"
        row: list[object] = [f"{size:,}"]
        for key in (base, f"migrate/{size}/entitydb", f"lint/{size}/entitydb"):
            row.append(f"{results.median(key):.2f} s ±{results.spread(key) * 50:.0f} %")
        for key in (f"migrate/{size}/entitydb", f"lint/{size}/entitydb"):
            q1, q3 = results.ratio_iqr(key, base)
            row.append(f"{results.ratio(key, base):.2f}x ({q1:.2f}-{q3:.2f})")
        rows.append(row)
    headers = [
        "revisions",
        "Flask-Migrate `migrate`",
        "entitydb `migrate`",
        "entitydb `lint`",
        "`migrate` / FM `migrate`",
        "`lint` / FM `migrate`",
    ]
    return (
        f"### {backend}\n\n{args.rounds} interleaved rounds; medians ± half the interquartile"
        " range; ratios are medians of per-round ratios to Flask-Migrate's `migrate`"
        f" (interquartile range in brackets); load average at end: {loadavg()}\n\n"
        + markdown_table(headers, rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("mysql", "postgresql"), action="append")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[10, 200, 1000],
    )
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    parser.add_argument("--postgresql-url", default=DEFAULT_POSTGRESQL_URL)
    args = parser.parse_args(argv)
    servers = {"mysql": args.mysql_url, "postgresql": args.postgresql_url}
    print("## `flask db migrate` and `flask db lint` on long histories\n")
    print("\n".join(machine_report()) + "\n")
    print(f"Command: `python benchmarks/history_bench.py {' '.join(argv or sys.argv[1:])}`\n")
    with tempfile.TemporaryDirectory(prefix="edb-histbench-") as tmp:
        workdir = Path(tmp)
        (workdir / f"{FACTORY_APPS}.py").write_text(_APPS)
        for backend in args.backend or ["mysql", "postgresql"]:
            print(run_backend(backend, servers[backend], args, workdir) + "\n", flush=True)
            for path in workdir.glob("histbench_[0-9]*"):
                shutil.rmtree(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
