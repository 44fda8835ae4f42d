"""Test isolation cost: 500 isolated tests against MariaDB with the pytest plugin's
SAVEPOINT fixture (``entitydb_transaction``), against recreating the tables for every test.

The script writes a small app (4 related entities: authors, shelves, books, loans, with
foreign keys, unique constraints and indexes) and three test files of N identical tests
(default 500) into a temporary folder. Every test does the same work: it inserts an author
and a book through ``db.session``, commits, and reads the book back through the test client.
The files differ only in how a test is isolated:

- ``savepoint``: the plugin's ``entitydb_transaction``; the schema is built once per run;
- ``recreate``: ``db.create_all()`` before and ``db.drop_all()`` after every test;
- ``none``: no isolation at all (schema built once, rows pile up): the cost of the test
  body, pytest and the app, which the two others are compared against.

Each round runs the three files, in a shuffled order, each in its own ``pytest`` process
against a fresh MariaDB database the script creates and drops. Measured per run: the wall
time of the process, and the sum of the tests' own durations (setup + call + teardown, from
pytest's JUnit XML), so start-up cost is left out. Reported: medians, the per-test cost, the
isolation overhead per test (``case - none``) and the paired ratio recreate / savepoint.

The suite's ``app`` fixture is session-scoped by default, so every case reuses one engine
and its pooled connection and the figures are the isolation's own cost. With
``--app-scope=function`` (pytest-flask's usual pattern) each test builds a new app and
engine: the ``none`` and ``recreate`` cases then also connect to the server for every test,
while the plugin keeps taking its connections from the first app's engine.

Run from the repository root, with a MariaDB server the user may create databases on::

    python benchmarks/isolation_bench.py
    python benchmarks/isolation_bench.py --url mysql+mysqldb://root@127.0.0.1:3306/test \\
        --tests 500 --rounds 3 --app-scope function
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import sqlalchemy as sa
from _harness import Results, fmt_ratio, interleave, loadavg, machine_report, markdown_table, say

DEFAULT_URL = "mysql+mysqldb://root@127.0.0.1:3306/test"

APP = """
import sqlalchemy as sa
from flask import Flask

from flask_entitydb import EntityDB

from .entities.library_entity import Author, Book

db = EntityDB()


def create_app(url):
    app = Flask(__name__)
    app.config.update(DB_CONNECTION_STRING=url, TESTING=True)
    db.init_app(app)

    @app.get("/books/<int:book_id>")
    def book(book_id):
        found = db.get_or_404(Book, book_id)
        return {"title": found.title, "author": found.author.name}

    return app
"""

ENTITIES = """
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_entitydb import Entity


class Author(Entity):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    born: Mapped[datetime | None]


class Shelf(Entity):
    __tablename__ = "shelves"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(40), unique=True)


class Book(Entity):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), index=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("authors.id"), index=True)
    shelf_id: Mapped[int | None] = mapped_column(sa.ForeignKey("shelves.id"))
    author: Mapped[Author] = relationship()


class Loan(Entity):
    __tablename__ = "loans"
    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(sa.ForeignKey("books.id"), index=True)
    borrower: Mapped[str] = mapped_column(sa.String(80))
    returned: Mapped[bool] = mapped_column(default=False)
"""

CONFTEST = """
import os

import pytest

from isobench import create_app, db

APP_SCOPE = os.environ["ISOBENCH_APP_SCOPE"]


@pytest.fixture(scope=APP_SCOPE)
def app(entitydb_url):
    app = create_app(entitydb_url)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def recreated_tables(app):
    with app.app_context():
        db.create_all()
    yield
    db.session.remove()  # the test's session (pytest-flask's request context)
    with app.app_context():
        db.drop_all()


@pytest.fixture(scope="session")
def schema_once(entitydb_url):
    app = create_app(entitydb_url)
    with app.app_context():
        db.create_all()
        db.engine.dispose()
"""

BODY = """
    author = Author(name=f"author {{n}}")
    book = Book(title=f"book {{n}}", author=author)
    db.session.add(book)
    db.session.commit()
    expected = {{"title": f"book {{n}}", "author": f"author {{n}}"}}
    assert client.get(f"/books/{{book.id}}").json == expected
"""

TESTS = """
import pytest

from isobench import db
from isobench.entities.library_entity import Author, Book


@pytest.mark.parametrize("n", range({tests}))
def test_isolated(n, {fixtures}, client):
{body}
"""

FIXTURES = {
    "savepoint": "entitydb_transaction",
    "recreate": "recreated_tables",
    "none": "schema_once",
}


def write_project(root: Path, tests: int) -> None:
    package = root / "isobench"
    (package / "entities").mkdir(parents=True)
    (package / "__init__.py").write_text(APP)
    (package / "entities" / "__init__.py").write_text("")
    (package / "entities" / "library_entity.py").write_text(ENTITIES)
    (root / "conftest.py").write_text(CONFTEST)
    (root / "pytest.ini").write_text("[pytest]\nentitydb_schema = create_all\n")
    body = textwrap.indent(textwrap.dedent(BODY.format()).strip(), "    ")
    for case, fixtures in FIXTURES.items():
        text = TESTS.format(tests=tests, fixtures=fixtures, body=body)
        (root / f"test_{case}.py").write_text(text)


def admin(url: sa.URL, sql: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        engine.dispose()


def run_case(root: Path, server: sa.URL, case: str, tests: int, app_scope: str) -> dict[str, float]:
    """Run one test file against a fresh database; return wall and summed test time."""
    name = f"isobench_{uuid.uuid4().hex[:10]}"
    admin(server, f"CREATE DATABASE {name}")
    report = root / f"{case}.xml"
    env = {
        **os.environ,
        "ENTITYDB_TEST_URL": server.set(database=name).render_as_string(False),
        "ISOBENCH_APP_SCOPE": app_scope,
    }
    env.pop("DB_CONNECTION_STRING", None)
    env.pop("PYTEST_ADDOPTS", None)
    try:
        start = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-o",
                "junit_duration_report=total",
                f"--junitxml={report}",
                f"test_{case}.py",
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
    finally:
        admin(server, f"DROP DATABASE IF EXISTS {name}")
    if result.returncode != 0:
        raise RuntimeError(f"{case}: pytest failed\n{result.stdout[-3000:]}{result.stderr}")
    cases = ElementTree.parse(report).getroot().iter("testcase")
    durations = [float(element.get("time", "0")) for element in cases]
    if len(durations) != tests:
        raise RuntimeError(f"{case}: expected {tests} test results, got {len(durations)}")
    return {"wall": wall, "tests": sum(durations)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ENTITYDB_TEST_MYSQL_URL", DEFAULT_URL))
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--app-scope",
        choices=("session", "function"),
        default="session",
        help="scope of the suite's 'app' fixture (function: a new app and engine per test)",
    )
    args = parser.parse_args()
    server = sa.make_url(args.url)

    report = machine_report(("flask-entitydb", "sqlalchemy", "pytest", "mysqlclient"))
    with tempfile.TemporaryDirectory(prefix="isobench-") as tmp:
        root = Path(tmp)
        write_project(root, args.tests)
        results = interleave(
            {
                case: (lambda c=case: run_case(root, server, c, args.tests, args.app_scope))
                for case in FIXTURES
            },
            rounds=args.rounds,
            warmup=0,
            progress=say,
        )

    def per_test(case: str, metric: str) -> float:
        return results.median(f"{case}@{metric}") / args.tests

    overhead = Results(
        {
            case: [
                (value - base) / args.tests
                for value, base in zip(
                    results.samples[f"{case}@tests"], results.samples["none@tests"], strict=True
                )
            ]
            for case in ("savepoint", "recreate")
        }
    )
    rows = []
    for case in ("savepoint", "recreate", "none"):
        rows.append(
            (
                {
                    "savepoint": "SAVEPOINT fixture",
                    "recreate": "recreate tables",
                    "none": "no isolation",
                }[case],
                f"{results.median(case + '@wall'):.1f} s",
                f"{per_test(case, 'wall') * 1e3:.2f} ms",
                f"{per_test(case, 'tests') * 1e3:.2f} ms",
                "" if case == "none" else f"{overhead.median(case) * 1e3:.2f} ms",
            )
        )
    ratio = results.ratio("recreate@tests", "savepoint@tests")
    overhead_ratio = overhead.ratio("recreate", "savepoint")
    print(
        f"## Test isolation: {args.tests} tests on MariaDB, {args.rounds} rounds,"
        f" {args.app_scope}-scoped app fixture\n"
    )
    print("\n".join(report))
    print(f"- load average at end: {loadavg()}\n")
    headers = (
        "isolation",
        "run (wall, median)",
        "per test (wall)",
        "per test (test time)",
        "isolation cost per test",
    )
    print(markdown_table(headers, rows))
    quartiles = results.ratio_iqr("recreate@tests", "savepoint@tests")
    savepoint_cost = overhead.median("savepoint")
    alone = (
        f"counting the isolation alone (minus the no-isolation run) it is {overhead_ratio:.0f}x"
        if savepoint_cost > 0
        else "the SAVEPOINT run is even faster than the no-isolation run: inside the outer"
        " transaction a test's commit is a RELEASE SAVEPOINT, not a durable COMMIT"
    )
    print(
        f"\nRecreating the tables takes {fmt_ratio(ratio, quartiles)} the test time of the"
        f" SAVEPOINT fixture; {alone}."
    )


if __name__ == "__main__":
    main()
