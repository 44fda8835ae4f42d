"""The pytest plugin, tested the way users meet it: example test suites run by a real
pytest in a subprocess (pytester), against SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers.databases import create_database, server_url
from helpers.plugin_runs import (
    admin_execute,
    clean_environment,
    run,
    scalar,
    server_databases,
    table_names,
)
from helpers.ports import free_port

pytest_plugins = ["pytester"]

# -- the example project the subprocess runs -----------------------------------------------

SHOP_INIT = """
from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, jsonify, request

from flask_entitydb import EntityDB

from .entities.item_entity import Item

db = EntityDB()


def create_app(config: dict | None = None, instance_path: str | None = None) -> Flask:
    app = Flask(__name__, instance_path=instance_path)
    app.config.update(config or {})
    db.init_app(app)

    @app.get("/items")
    def list_items():
        return jsonify(sorted(db.session.scalars(sa.select(Item.name))))

    @app.post("/items")
    def add_item():
        db.session.add(Item(name=request.json["name"]))
        try:
            db.session.commit()
        except sa.exc.IntegrityError:
            db.session.rollback()
            return {"error": "duplicate"}, 409
        return {"name": request.json["name"]}, 201

    @app.post("/items/uncommitted")
    def add_without_commit():
        # a bug: in production the row is rolled back when the request ends
        db.session.add(Item(name=request.json["name"]))
        db.session.flush()
        return {"name": request.json["name"]}, 201

    @app.post("/items/flush-then-fail")
    def add_then_fail():
        db.session.add(Item(name=request.json["name"]))
        db.session.flush()
        raise RuntimeError("the view failed after its flush")

    @app.post("/items/database-error")
    def add_then_database_error():
        db.session.add(Item(name=request.json["name"]))
        db.session.flush()
        db.session.execute(sa.text("SELECT no_such_column FROM items"))
        return {"name": request.json["name"]}, 201

    return app
"""

ITEM_ENTITY = """
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from flask_entitydb import Entity


class Item(Entity):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50), unique=True)
"""

CONFTEST = """
import pytest

from shop import create_app


@pytest.fixture
def app(entitydb_url):
    return create_app({"DB_CONNECTION_STRING": entitydb_url, "TESTING": True})
"""

INI_CREATE_ALL = """
[pytest]
filterwarnings = error
entitydb_schema = create_all
"""

BEHAVIOUR_TESTS = """
import pytest
import sqlalchemy as sa

from shop import db
from shop.entities.item_entity import Item


def names():
    return sorted(db.session.scalars(sa.select(Item.name)))


def test_a_commits(entitydb_transaction):
    assert names() == []
    db.session.add(Item(name="a"))
    db.session.commit()
    assert names() == ["a"]
    raw = entitydb_transaction.connection.scalar(sa.text("SELECT count(*) FROM items"))
    assert raw == 1


def test_b_commits(entitydb_session):
    assert names() == []
    entitydb_session.add(Item(name="b"))
    entitydb_session.commit()
    assert names() == ["b"]


def test_commit_rollback_and_integrity_error(entitydb_session):
    assert names() == []
    entitydb_session.add(Item(name="kept"))
    entitydb_session.commit()
    entitydb_session.add(Item(name="dropped"))
    entitydb_session.rollback()
    assert names() == ["kept"]
    entitydb_session.add(Item(name="kept"))
    with pytest.raises(sa.exc.IntegrityError):
        entitydb_session.commit()
    entitydb_session.rollback()
    assert names() == ["kept"]
    entitydb_session.add(Item(name="after"))
    entitydb_session.commit()
    assert names() == ["after", "kept"]


def test_client_shares_the_transaction(entitydb_transaction, client):
    assert client.get("/items").json == []
    db.session.add(Item(name="from-test"))
    db.session.commit()
    assert client.get("/items").json == ["from-test"]
    assert client.post("/items", json={"name": "from-request"}).status_code == 201
    assert names() == ["from-request", "from-test"]
    assert client.post("/items", json={"name": "from-test"}).status_code == 409
    assert client.get("/items").json == ["from-request", "from-test"]
"""
BEHAVIOUR_ORDER = [
    "test_a_commits",
    "test_b_commits",
    "test_commit_rollback_and_integrity_error",
    "test_client_shares_the_transaction",
]


@pytest.fixture
def shop(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester folder holding the example 'shop' app and its conftest."""
    clean_environment(monkeypatch)
    pytester.mkpydir("shop")
    pytester.mkpydir("shop/entities")
    (pytester.path / "shop" / "__init__.py").write_text(SHOP_INIT)
    (pytester.path / "shop" / "entities" / "item_entity.py").write_text(ITEM_ENTITY)
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI_CREATE_ALL)
    return pytester


# -- isolation -------------------------------------------------------------------------------


def test_rows_committed_in_one_test_are_gone_in_the_next(
    shop: pytest.Pytester, database_url: str
) -> None:
    # the same tests twice, in forward and then reverse order, so each one runs both
    # before and after each other one (a, b, c, d, d, c, b, a)
    shop.makepyfile(test_forward=BEHAVIOUR_TESTS, test_reverse=BEHAVIOUR_TESTS)
    node_ids = [f"test_forward.py::{name}" for name in BEHAVIOUR_ORDER] + [
        f"test_reverse.py::{name}" for name in reversed(BEHAVIOUR_ORDER)
    ]

    result = run(shop, "-v", f"--entitydb-url={database_url}", *node_ids)

    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines([f"*{node_id} PASSED*" for node_id in node_ids])
    # the schema was built in the named database, and nothing any test committed stayed
    assert "items" in table_names(database_url)
    assert scalar(database_url, "SELECT count(*) FROM items") == 0


REQUEST_TESTS = """
import pytest
import sqlalchemy as sa

from shop import db
from shop.entities.item_entity import Item


@pytest.fixture(params=["pytest_flask_client", "app_test_client"])
def http(request, app):
    if request.param == "pytest_flask_client":
        if not request.config.pluginmanager.hasplugin("flask"):
            pytest.skip("pytest-flask is not loaded")
        return request.getfixturevalue("client")
    return app.test_client()


def names():
    return sorted(db.session.scalars(sa.select(Item.name)))


def count_on_the_connection(transaction):
    return transaction.connection.scalar(sa.text("SELECT count(*) FROM items"))


def test_uncommitted_work_of_a_view_is_rolled_back(entitydb_transaction, http):
    assert http.post("/items/uncommitted", json={"name": "lost"}).status_code == 201
    assert names() == []
    assert count_on_the_connection(entitydb_transaction) == 0
    assert http.get("/items").json == []


def test_a_view_that_fails_after_its_flush_leaves_nothing(entitydb_transaction, http):
    with pytest.raises(RuntimeError, match="failed after its flush"):
        http.post("/items/flush-then-fail", json={"name": "half"})
    assert names() == []
    assert count_on_the_connection(entitydb_transaction) == 0
    assert http.get("/items").json == []


def test_committed_work_of_a_view_is_visible_to_the_test(entitydb_transaction, http):
    db.session.add(Item(name="from-test"))
    db.session.commit()
    assert http.post("/items", json={"name": "from-request"}).status_code == 201
    assert names() == ["from-request", "from-test"]
    assert count_on_the_connection(entitydb_transaction) == 2
    assert http.post("/items", json={"name": "from-test"}).status_code == 409
    assert http.get("/items").json == ["from-request", "from-test"]
    db.session.add(Item(name="after"))
    db.session.commit()
    assert names() == ["after", "from-request", "from-test"]


def test_a_database_error_in_a_view_leaves_the_tests_session_usable(
    entitydb_transaction, http, app
):
    db.session.add(Item(name="before"))
    db.session.commit()
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500, as in production
    assert http.post("/items/database-error", json={"name": "broken"}).status_code == 500
    assert names() == ["before"]
    db.session.add(Item(name="after"))
    db.session.commit()
    assert names() == ["after", "before"]
    assert http.post("/items", json={"name": "next"}).status_code == 201
    assert http.get("/items").json == ["after", "before", "next"]
"""
REQUEST_TEST_NAMES = [
    "test_uncommitted_work_of_a_view_is_rolled_back",
    "test_a_view_that_fails_after_its_flush_leaves_nothing",
    "test_committed_work_of_a_view_is_visible_to_the_test",
    "test_a_database_error_in_a_view_leaves_the_tests_session_usable",
]


@pytest.mark.parametrize("with_pytest_flask", [True, False], ids=["pytest-flask", "plain"])
def test_each_request_has_its_own_session_joined_by_savepoint(
    shop: pytest.Pytester, database_url: str, with_pytest_flask: bool
) -> None:
    shop.makepyfile(test_requests=REQUEST_TESTS)
    args = ["-v", "-rs", f"--entitydb-url={database_url}"]
    if not with_pytest_flask:
        args += ["-p", "no:flask"]

    result = run(shop, *args)

    clients = (
        ["pytest_flask_client", "app_test_client"] if with_pytest_flask else ["app_test_client"]
    )
    expected = [
        f"*test_requests.py::{name}[[]{client}[]] PASSED*"
        for name in REQUEST_TEST_NAMES
        for client in clients
    ]
    result.stdout.fnmatch_lines_random(expected)
    # without pytest-flask its 'client' fixture does not exist: those 4 skip
    result.assert_outcomes(passed=len(expected), skipped=8 - len(expected))
    # what the views and tests committed was rolled back with the outer transaction
    assert scalar(database_url, "SELECT count(*) FROM items") == 0


def test_without_pytest_flask_the_fixture_pushes_an_app_context(
    shop: pytest.Pytester, tmp_path: Path
) -> None:
    shop.makepyfile(test_behaviour=BEHAVIOUR_TESTS)
    url = f"sqlite:///{tmp_path / 'plain.sqlite3'}"

    result = run(shop, "-p", "no:flask", f"--entitydb-url={url}", "-k", "not client")

    result.assert_outcomes(passed=3, deselected=1)
    assert scalar(url, "SELECT count(*) FROM items") == 0


def test_default_database_is_a_throwaway_sqlite_file(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        test_default="""
        import sqlalchemy as sa

        def test_url(entitydb_url, entitydb_transaction):
            url = sa.make_url(entitydb_url)
            assert url.get_backend_name() == "sqlite"
            assert "entitydb" in url.database and url.database.endswith(".sqlite3")
            print("\\nDATABASE", url.database)
        """
    )

    result = run(shop, "-s")

    result.assert_outcomes(passed=1)
    line = next(line for line in result.outlines if line.startswith("DATABASE "))
    path = Path(line.split(" ", 1)[1])
    assert path.is_relative_to(shop.path)  # under the run's basetemp
    assert "items" in table_names(f"sqlite:///{path}")


# -- xdist -----------------------------------------------------------------------------------

XDIST_TESTS = """
import os

import pytest
import sqlalchemy as sa


@pytest.fixture(scope="session")
def worker_marker(entitydb_url):
    # committed outside the test transaction: visible to any worker sharing the database
    worker = os.environ["PYTEST_XDIST_WORKER"]
    engine = sa.create_engine(entitydb_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS markers (worker VARCHAR(10))"))
        conn.execute(sa.text("INSERT INTO markers (worker) VALUES (:w)"), {{"w": worker}})
    engine.dispose()
    database = sa.make_url(entitydb_url).database
    with open(os.path.join({seen!r}, worker), "w") as file:
        file.write(database)
    return worker


@pytest.mark.parametrize("n", range(12))
def test_item(n, worker_marker, entitydb_transaction, client):
    markers = entitydb_transaction.connection.scalars(sa.text("SELECT worker FROM markers"))
    assert list(markers) == [worker_marker]
    assert client.post("/items", json={{"name": f"item-{{n}}"}}).status_code == 201
    assert client.get("/items").json == [f"item-{{n}}"]
"""


def test_xdist_workers_each_get_their_own_database(
    shop: pytest.Pytester, backend: str, database_url: str
) -> None:
    seen = shop.path / "seen"
    seen.mkdir()
    shop.makepyfile(test_xdist=XDIST_TESTS.format(seen=str(seen)))
    args = ["-n", "2"]
    if backend != "sqlite":  # SQLite: the default, a throwaway file per worker
        args.append(f"--entitydb-url={database_url}")

    result = run(shop, *args)

    result.assert_outcomes(passed=12)
    databases = {path.name: path.read_text() for path in seen.iterdir()}
    assert set(databases) == {"gw0", "gw1"}
    assert databases["gw0"] != databases["gw1"]
    if backend == "sqlite":
        assert all(name.endswith(".sqlite3") for name in databases.values())
    else:
        base = sa.make_url(database_url).database
        # <name>_<UTC time>_<run>_<worker>, the run part shared by the run's workers
        for worker, name in databases.items():
            assert re.fullmatch(rf"{base}_\d{{14}}_[0-9a-f]{{8}}_{worker}", name), name
        assert databases["gw0"].split("_")[-2] == databases["gw1"].split("_")[-2]
        # both were dropped at the end of the run
        assert server_databases(database_url, base) == set()
        # and the database named on the command line was left alone
        assert table_names(database_url) == set()


def test_xdist_sqlite_file_url_gets_a_file_per_worker(
    shop: pytest.Pytester, tmp_path: Path
) -> None:
    seen = shop.path / "seen"
    seen.mkdir()
    shop.makepyfile(test_xdist=XDIST_TESTS.format(seen=str(seen)))
    path = tmp_path / "suite.sqlite3"

    result = run(shop, "-n", "2", f"--entitydb-url=sqlite:///{path}")

    result.assert_outcomes(passed=12)
    files = {p.name: p.read_text() for p in seen.iterdir()}
    assert set(files) == {"gw0", "gw1"}
    for worker, name in files.items():
        pattern = rf"{re.escape(str(tmp_path))}/suite_\d{{14}}_[0-9a-f]{{8}}_{worker}\.sqlite3"
        assert re.fullmatch(pattern, name), name
    # the plugin's own worker files are removed at the end
    assert sorted(p.name for p in tmp_path.glob("suite*")) == []


CONCURRENT_TESTS = """
import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

SEEN = Path({seen!r})
RUN = os.environ["CONCURRENT_RUN"]


STARTED = {{}}


@pytest.fixture
def both_runs_started(app, entitydb_database):
    if STARTED:
        return STARTED["owner"]
    entitydb_database.prepare(app)
    worker = os.environ["PYTEST_XDIST_WORKER"]
    with app.app_context():
        engine = sa.create_engine(app.extensions["entitydb"].db.engine.url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE markers (owner VARCHAR(20))"))
        conn.execute(sa.text("INSERT INTO markers (owner) VALUES (:o)"), {{"o": RUN + worker}})
    engine.dispose()
    (SEEN / f"{{RUN}}-{{worker}}").write_text(str(engine.url.database))
    # wait until all four workers of both runs have made their databases
    deadline = time.monotonic() + 120
    while len(list(SEEN.iterdir())) < 4:
        assert time.monotonic() < deadline, "the other run did not start"
        time.sleep(0.1)
    STARTED["owner"] = RUN + worker
    return STARTED["owner"]


@pytest.mark.parametrize("n", range(6))
def test_item(n, both_runs_started, entitydb_transaction, client):
    markers = entitydb_transaction.connection.scalars(sa.text("SELECT owner FROM markers"))
    assert list(markers) == [both_runs_started]
    assert client.post("/items", json={{"name": f"item-{{n}}"}}).status_code == 201
    assert client.get("/items").json == [f"item-{{n}}"]
"""


def test_two_concurrent_xdist_runs_keep_their_own_databases(
    shop: pytest.Pytester, backend: str, database_url: str, tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    shop.makepyfile(test_concurrent=CONCURRENT_TESTS.format(seen=str(seen)))
    url = f"sqlite:///{tmp_path / 'suite.sqlite3'}" if backend == "sqlite" else database_url

    def start(run_name: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2"]
        command += [f"--entitydb-url={url}", f"--basetemp={tmp_path / run_name}"]
        env = {**os.environ, "CONCURRENT_RUN": run_name}
        return subprocess.Popen(
            command, cwd=shop.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip

    first = start("A")
    # the second run starts once the first one's workers have their databases
    deadline = time.monotonic() + 120
    while len(list(seen.iterdir())) < 2 and first.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    second = start("B")
    outputs = [process.communicate(timeout=300)[0] for process in (first, second)]

    for output, process in zip(outputs, (first, second), strict=True):
        assert process.returncode == 0, output
        assert "6 passed" in output, output
    databases = {path.name: path.read_text() for path in seen.iterdir()}
    assert set(databases) == {"A-gw0", "A-gw1", "B-gw0", "B-gw1"}
    assert len(set(databases.values())) == 4
    if backend == "sqlite":
        assert sorted(p.name for p in tmp_path.glob("suite*")) == []
    else:
        base = sa.make_url(database_url).database or ""
        assert server_databases(database_url, base) == set()
        assert table_names(database_url) == set()


def old_stamp(days: float) -> str:
    moment = datetime.now(timezone.utc) - timedelta(days=days)
    return moment.strftime("%Y%m%d%H%M%S")


def test_worker_databases_of_crashed_runs_are_dropped_after_a_day(
    shop: pytest.Pytester, backend: str, database_url: str, tmp_path: Path
) -> None:
    shop.makepyfile(test_behaviour=BEHAVIOUR_TESTS)
    if backend == "sqlite":
        base = "suite"
        url = f"sqlite:///{tmp_path / 'suite.sqlite3'}"
    else:
        base = sa.make_url(database_url).database or ""
        url = database_url
    crashed = f"{base}_{old_stamp(1.1)}_deadbeef_gw1"
    keep = [
        f"{base}_{old_stamp(0.9)}_cafef00d_gw0",  # a run that may still be going
        f"{base}_gw0",  # not named by the plugin
        f"{base}_keep_{old_stamp(3)}_deadbeef_gw0",  # another base name
    ]
    made = [crashed, *keep]
    if backend == "sqlite":
        for name in made:
            sqlite3.connect(tmp_path / f"{name}.sqlite3").close()
    else:
        for name in made:
            admin_execute(database_url, f"CREATE DATABASE {name}")
    try:
        result = run(shop, "-n", "2", f"--entitydb-url={url}")

        result.assert_outcomes(passed=4)
        if backend == "sqlite":
            left = {p.name.removesuffix(".sqlite3") for p in tmp_path.glob("suite*")}
        else:
            left = server_databases(database_url, base)
        assert left == set(keep)
    finally:
        if backend != "sqlite":
            for name in made:
                admin_execute(database_url, f"DROP DATABASE IF EXISTS {name}")


RELATIVE_SQLITE_TESTS = """
import os

import pytest
import sqlalchemy as sa

from shop import db


@pytest.mark.parametrize("n", range(4))
def test_marker(n, app, entitydb_transaction, entitydb_url):
    assert not os.path.isabs(sa.make_url(entitydb_url).database)
    path = db.engine.url.database
    assert path.startswith(app.instance_path + os.sep), path
    if n == 0:  # committed for good, outside the test's transaction
        engine = sa.create_engine(db.engine.url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS kept (n INTEGER)"))
            conn.execute(sa.text("INSERT INTO kept (n) VALUES (1)"))
        engine.dispose()
        # a file left by an earlier run would hold its row too
        assert entitydb_transaction.connection.scalar(sa.text("SELECT count(*) FROM kept")) == 1
"""


def test_relative_sqlite_url_under_xdist_is_in_the_instance_folder_and_removed(
    shop: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.makepyfile(test_relative=RELATIVE_SQLITE_TESTS)
    monkeypatch.setenv("ENTITYDB_TEST_URL", "sqlite:///suite.sqlite3")
    instance = shop.path / "instance"

    for _ in range(2):  # the second run must not find anything of the first
        result = run(shop, "-n", "2")

        result.assert_outcomes(passed=4)
        assert sorted(p.name for p in instance.glob("suite*")) == []
        assert sorted(p.name for p in shop.path.glob("suite*")) == []


def test_relative_sqlite_url_resolved_in_two_instance_folders_is_refused(
    shop: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.makepyfile(
        test_folders="""
        import pytest
        from shop import create_app

        @pytest.fixture
        def app(entitydb_url, tmp_path):
            config = {"DB_CONNECTION_STRING": entitydb_url}
            return create_app(config, instance_path=str(tmp_path / "instance"))

        def test_first(entitydb_transaction):
            pass

        def test_second(entitydb_transaction):
            pass
        """
    )
    monkeypatch.setenv("ENTITYDB_TEST_URL", "sqlite:///suite.sqlite3")

    result = run(shop, "-n", "1")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*The test database 'sqlite:///suite_*_gw0.sqlite3' is a relative path, which each"
            " app resolves in its instance folder: this app uses *; give ENTITYDB_TEST_URL /"
            " --entitydb-url an absolute path, or give the apps the same instance folder."
        ]
    )


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme", ["mysql+mysqldb", "postgresql+psycopg"], ids=["mysql", "postgresql"]
)
def test_unreachable_database_stops_the_run_with_one_line(
    shop: pytest.Pytester, scheme: str
) -> None:
    shop.makepyfile(test_behaviour=BEHAVIOUR_TESTS)
    url = f"{scheme}://tester:s3cret-pw@127.0.0.1:{free_port()}/shop"

    result = run(shop, f"--entitydb-url={url}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    lines = [line for line in output.splitlines() if "cannot connect" in line]
    assert len(lines) == 1
    assert f"'{scheme}://tester:***@127.0.0.1:" in lines[0]
    assert "--entitydb-url" in lines[0]
    assert "s3cret-pw" not in output
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    result.assert_outcomes()  # nothing ran


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("mysql", marks=pytest.mark.mysql),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ],
)
def test_missing_database_on_a_running_server_says_so(shop: pytest.Pytester, server: str) -> None:
    """The server answers and only the database is missing: the line says that, not
    'start the server'."""
    shop.makepyfile(test_behaviour=BEHAVIOUR_TESTS)
    name = f"edb_missing_{uuid.uuid4().hex[:8]}"
    url = server_url(server).set(database=name).render_as_string(hide_password=False)

    result = run(shop, f"--entitydb-url={url}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    [line] = [line for line in output.splitlines() if "cannot connect" in line]
    assert f"the server runs, but has no database '{name}': create it (CREATE DATABASE" in line
    assert "start the server" not in line


def test_unreachable_database_under_xdist_fails_each_test_with_one_line(
    shop: pytest.Pytester,
) -> None:
    shop.makepyfile(test_behaviour=BEHAVIOUR_TESTS)
    url = f"mysql+mysqldb://tester:s3cret-pw@127.0.0.1:{free_port()}/shop"

    result = run(shop, "-n", "2", f"--entitydb-url={url}")

    result.assert_outcomes(errors=4)
    output = result.stdout.str() + result.stderr.str()
    assert "s3cret-pw" not in output
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    assert "The above exception" not in output
    result.stdout.fnmatch_lines(
        ["flask-entitydb: cannot connect to the test database 'mysql+mysqldb://tester:***@*"]
    )


def test_app_on_another_database_is_refused_and_left_untouched(
    shop: pytest.Pytester, tmp_path: Path
) -> None:
    other = tmp_path / "development.sqlite3"
    shop.makepyfile(
        test_wrong=f"""
        import pytest
        from shop import create_app

        @pytest.fixture
        def app():
            return create_app({{"DB_CONNECTION_STRING": "sqlite:///{other}"}})

        def test_writes(entitydb_transaction):
            pass
        """
    )

    result = run(shop)

    result.assert_outcomes(errors=1)
    assert (
        f"The 'app' fixture's database is 'sqlite:///{other}', not this test session's"
        " database" in result.stdout.str()
    )
    assert (
        "build the app with app.config['DB_CONNECTION_STRING'] = entitydb_url"
        in result.stdout.str()
    )
    assert not other.exists() or table_names(f"sqlite:///{other}") == set()


def test_app_without_entitydb_is_refused(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        test_plain="""
        import pytest
        from flask import Flask

        @pytest.fixture
        def app():
            return Flask("plainapp")

        def test_writes(entitydb_transaction):
            pass
        """
    )

    result = run(shop)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*The 'app' fixture's app 'plainapp' does not use EntityDB;*"])


def test_missing_migrations_folder_names_the_folder_and_the_alternative(
    shop: pytest.Pytester,
) -> None:
    shop.makeini("[pytest]\nfilterwarnings = error\n")  # default: real migrations
    shop.makepyfile(test_behaviour=BEHAVIOUR_TESTS)

    result = run(shop, "-k", "test_a_commits")

    result.assert_outcomes(errors=1, deselected=3)
    folder = shop.path / "shop" / "migrations"
    result.stdout.fnmatch_lines(
        [
            f"*The app 'shop' has no migrations folder '{folder}'; create it with 'flask db"
            " init'*--entitydb-schema=create_all*"
        ]
    )


# -- real migrations ---------------------------------------------------------------------------

MAKE_MIGRATIONS = """
import sys

from flask_entitydb import migrations
from shop import create_app

app = create_app({"DB_CONNECTION_STRING": sys.argv[1]})
migrations.init(app=app)
print("REVISION", migrations.migrate(message="create items", app=app).revision)
"""

MIGRATIONS_TEST = """
from flask_entitydb.pytest_plugin import check_migrations


def test_migrations(app):
    check_migrations(app)
"""


def add_migrations(pytester: pytest.Pytester, tmp_path: Path) -> str:
    """Write the shop's migrations folder with the real 'flask db' API (in a subprocess,
    so this process never imports the example's entities); return the revision id."""
    scratch = f"sqlite:///{tmp_path / 'scratch.sqlite3'}"
    result = pytester.run(sys.executable, "-c", MAKE_MIGRATIONS, scratch)
    assert result.ret == 0, result.stderr.str()
    line = next(line for line in result.outlines if line.startswith("REVISION "))
    return line.split()[1]


def test_schema_comes_from_the_apps_migrations(
    shop: pytest.Pytester, database_url: str, tmp_path: Path
) -> None:
    head = add_migrations(shop, tmp_path)
    shop.makeini("[pytest]\nfilterwarnings = error\n")  # default: real migrations
    shop.makepyfile(test_behaviour=BEHAVIOUR_TESTS, test_zz_migrations=MIGRATIONS_TEST)

    result = run(shop, f"--entitydb-url={database_url}")

    result.assert_outcomes(passed=5)
    # built by the migrations (create_all writes no version table), left at head, no rows
    assert scalar(database_url, "SELECT version_num FROM alembic_version") == head
    assert scalar(database_url, "SELECT count(*) FROM items") == 0


def test_check_migrations_reports_an_entity_change_without_a_revision(
    shop: pytest.Pytester, tmp_path: Path
) -> None:
    add_migrations(shop, tmp_path)
    entity = shop.path / "shop" / "entities" / "item_entity.py"
    entity.write_text(ITEM_ENTITY + "    price: Mapped[int | None] = mapped_column(sa.Integer)\n")
    shop.makeini("[pytest]\nfilterwarnings = error\n")
    shop.makepyfile(test_migrations=MIGRATIONS_TEST)

    result = run(shop)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "check_migrations: the migrations do not match the entities.",
            "The entities differ from the database and no revision covers it*",
            "*price*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_check_migrations_refuses_a_database_that_is_not_the_test_database(
    shop: pytest.Pytester, tmp_path: Path
) -> None:
    add_migrations(shop, tmp_path)
    other = tmp_path / "production.sqlite3"
    shop.makepyfile(
        test_migrations=f"""
        import pytest
        from flask_entitydb.pytest_plugin import check_migrations
        from shop import create_app

        @pytest.fixture
        def app(entitydb_url):
            return create_app({{"DB_CONNECTION_STRING": "sqlite:///{other}"}})

        def test_migrations(app):
            check_migrations(app)
        """
    )

    result = run(shop)

    result.assert_outcomes(failed=1)
    assert (
        "check_migrations drops every table, so it only runs against this test session's"
        f" database, and the app uses 'sqlite:///{other}'" in result.stdout.str()
    )
    assert not other.exists()


def test_invalid_schema_setting_is_a_usage_error(shop: pytest.Pytester) -> None:
    shop.makeini("[pytest]\nentitydb_schema = create-all\n")
    shop.makepyfile(test_behaviour=BEHAVIOUR_TESTS)

    result = run(shop)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: entitydb_schema is 'create-all'; use 'migrations' or 'create_all'."]
    )


# -- suites that do not use the plugin ------------------------------------------------------


def test_suite_with_its_own_db_fixtures_is_unaffected(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makeconftest(
        """
        import os

        import pytest
        import sqlalchemy as sa
        from flask import Flask
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

        from flask_entitydb import EntityDB


        class Base(DeclarativeBase):
            pass


        class Note(Base):
            __tablename__ = "notes"
            id: Mapped[int] = mapped_column(primary_key=True)


        @pytest.fixture
        def app(tmp_path):
            app = Flask("notes", instance_path=str(tmp_path / "instance"))
            app.config["DB_CONNECTION_STRING"] = f"sqlite:///{tmp_path / 'own.sqlite3'}"
            app.config["ENTITYDB_ENTITY_PACKAGES"] = ["conftest"]
            EntityDB(app, base=Base)

            @app.get("/")
            def index():
                return "ok"

            return app


        @pytest.fixture
        def db(app):
            database = app.extensions["entitydb"].db
            with app.app_context():
                database.create_all()
            return database


        @pytest.fixture
        def session(db):
            return db.session


        @pytest.fixture
        def database():
            return "my own database fixture"
        """
    )
    pytester.makepyfile(
        test_own="""
        import os

        import sqlalchemy as sa

        from conftest import Note


        def test_own_fixtures(request, app, db, session, database, client):
            assert request.config.pluginmanager.hasplugin("flask_entitydb")
            assert not [n for n in request.fixturenames if n.startswith("entitydb")]
            assert database == "my own database fixture"
            assert client.get("/").data == b"ok"
            session.add(Note())
            session.commit()
            assert session.scalar(sa.select(sa.func.count()).select_from(Note)) == 1
            assert "DB_CONNECTION_STRING" not in os.environ


        def test_commits_persist_without_the_plugin(db, session):
            # without entitydb_transaction nothing is rolled back: this app's own
            # fixture gives each test a new file, so it starts empty
            assert session.scalar(sa.select(sa.func.count()).select_from(Note)) == 0
        """
    )

    result = run(pytester)
    result.assert_outcomes(passed=2)
    output = [line for line in result.outlines if not line.startswith("plugins:")]
    assert not [line for line in output if "entitydb" in line.lower()]

    fixtures = run(pytester, "--fixtures")
    start = next(i for i, line in enumerate(fixtures.outlines) if "from flask_entitydb" in line)
    ours = set()
    for line in fixtures.outlines[start + 1 :]:
        if line.startswith("---") or line.startswith("==="):
            break
        if line and not line.startswith(" "):
            ours.add(line.split()[0])
    assert ours == {
        "entitydb_binds",
        "entitydb_database",
        "entitydb_url",
        "entitydb_transaction",
        "entitydb_session",
    }


# -- suites written for Flask-SQLAlchemy -------------------------------------------------------

COUNTER_TESTS = """
import pytest
import sqlalchemy as sa

from shop import db
from shop.entities.item_entity import Item


@pytest.mark.parametrize("n", range(3))
def test_ids_start_at_one(n, entitydb_transaction, client):
    assert client.post("/items", json={"name": f"first-{n}"}).status_code == 201
    second = Item(name=f"second-{n}")
    db.session.add(second)
    db.session.commit()
    assert db.session.scalar(sa.select(Item.id).where(Item.name == f"first-{n}")) == 1
    assert second.id == 2
"""


def test_ids_start_at_one_in_every_test(
    shop: pytest.Pytester, database_url: str, tmp_path: Path
) -> None:
    """PostgreSQL sequences and MariaDB's AUTO_INCREMENT are not rolled back: the plugin
    puts them back before each test, so suites that expect ``id == 1`` pass."""
    add_migrations(shop, tmp_path)
    shop.makeini("[pytest]\nfilterwarnings = error\n")
    shop.makepyfile(test_counters=COUNTER_TESTS)

    result = run(shop, f"--entitydb-url={database_url}")

    result.assert_outcomes(passed=3)


DROP_ALL_CONFTEST = """
import pytest

from shop import create_app, db


@pytest.fixture
def app(entitydb_url):
    app = create_app({"DB_CONNECTION_STRING": entitydb_url, "TESTING": True})
    yield app
    with app.app_context():
        db.drop_all()  # the suite's own clean-up, as written for Flask-SQLAlchemy
"""


def test_a_schema_emptied_by_drop_all_is_rebuilt_with_one_line(
    shop: pytest.Pytester, database_url: str, tmp_path: Path
) -> None:
    head = add_migrations(shop, tmp_path)
    shop.makeini("[pytest]\nfilterwarnings = error\n")
    shop.makeconftest(DROP_ALL_CONFTEST)
    shop.makepyfile(test_behaviour=BEHAVIOUR_TESTS)

    result = run(shop, "-p", "no:flask", f"--entitydb-url={database_url}", "-k", "not client")

    result.assert_outcomes(passed=3, deselected=1)
    rebuilt = [line for line in result.outlines if "lost the tables" in line]
    assert len(rebuilt) == 2, result.outlines  # before the 2nd and the 3rd test
    assert rebuilt[0].startswith("flask-entitydb: the test database '")
    assert "lost the tables 'items' (dropped by the app, e.g. db.drop_all() in a" in rebuilt[0]
    assert rebuilt[0].endswith("emptied it and ran the migrations again.")
    # the last test's drop_all() is the last word: the version table is still there
    assert scalar(database_url, "SELECT version_num FROM alembic_version") == head


TEST_ONLY_ENTITY_TESTS = """
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from flask_entitydb import Entity
from flask_entitydb.pytest_plugin import check_migrations


class Scratch(Entity):  # a model only the tests use: it has no revision on purpose
    __tablename__ = "scratch_rows"
    id: Mapped[int] = mapped_column(primary_key=True)


def test_migrations(app):
    check_migrations(app)
"""


def test_an_entity_defined_in_a_test_module_does_not_fail_check_migrations(
    shop: pytest.Pytester, tmp_path: Path
) -> None:
    add_migrations(shop, tmp_path)
    shop.makeini("[pytest]\nfilterwarnings = error\n")
    shop.makepyfile(test_scratch=TEST_ONLY_ENTITY_TESTS)

    result = run(shop)

    result.assert_outcomes(passed=1)


# -- a schema reused across sessions ----------------------------------------------------------

SERVERS = [
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("postgresql", marks=pytest.mark.postgresql),
]

REUSE_TESTS = """
import pytest


@pytest.mark.parametrize("n", range(8))
def test_item(n, entitydb_transaction, client):
    assert client.post("/items", json={"name": f"item-{n}"}).status_code == 201
    assert client.get("/items").json == [f"item-{n}"]
"""

LOGGED_UPGRADE = """def upgrade() -> None:
    with open(os.environ["MIGRATION_LOG"], "a") as log:
        log.write("ran\\n")
"""


def logged_migrations(
    shop: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Give the shop its migrations, whose one revision writes a line to a log each time it
    runs; return the revision file. ``migrations_run(log)`` counts the lines."""
    add_migrations(shop, tmp_path)
    [revision] = (shop.path / "shop" / "migrations" / "versions").glob("*.py")
    source = revision.read_text().replace("def upgrade() -> None:\n", LOGGED_UPGRADE, 1)
    revision.write_text("import os\n" + source)
    monkeypatch.setenv("MIGRATION_LOG", str(tmp_path / "migration.log"))
    shop.makeini("[pytest]\nfilterwarnings = error\n")
    return revision


def kept_summary(result: pytest.RunResult) -> dict[str, str]:
    """Kept database -> what the run did with it, from the plugin's end-of-run lines."""
    pattern = re.compile(r"flask-entitydb: kept test database '([^']+)': (.+)")
    return dict(m.groups() for line in result.outlines if (m := pattern.fullmatch(line)))


def database_oids(url: str, names: set[str]) -> dict[str, int]:
    """PostgreSQL: the oid of each database (a database made again gets a new one)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT datname, oid FROM pg_database"))
            return {str(name): int(oid) for name, oid in rows if name in names}
    finally:
        engine.dispose()


REUSED = "reused (same migrations, left clean by the last run)"
BUILT = "built with the migrations"
COPIED = "copied from the schema template"


@pytest.mark.parametrize("server", SERVERS)
def test_worker_databases_are_kept_and_reused_while_the_migrations_are_the_same(
    shop: pytest.Pytester, server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, drop = create_database(server, tmp_path)
    base = sa.make_url(url).database or ""
    kept = {f"{base}_kept_gw0", f"{base}_kept_gw1"}
    try:
        revision = logged_migrations(shop, tmp_path, monkeypatch)
        shop.makepyfile(test_reuse=REUSE_TESTS)
        log = tmp_path / "migration.log"

        def runs(*extra: str) -> tuple[int, dict[str, str]]:
            log.write_text("")
            result = run(shop, "-n", "2", f"--entitydb-url={url}", *extra)
            result.assert_outcomes(passed=8)
            return log.read_text().count("ran"), kept_summary(result)

        # first run: one worker builds the schema with the migrations, the other copies it
        ran, summary = runs()
        assert ran == 1
        assert set(summary) == kept
        assert sorted(summary.values()) == [BUILT, COPIED]
        [template] = server_databases(url, base, templates=True) - kept
        assert template.startswith(f"{base}_tpl_")
        assert server_databases(url, base) == kept  # kept for the next run
        # the migrations did not change: each worker uses its database as it is
        oids = database_oids(url, kept) if server == "postgresql" else {}
        assert runs() == (0, dict.fromkeys(kept, REUSED))
        if server == "postgresql":  # not dropped and made again
            assert database_oids(url, kept) == oids
        # --entitydb-rebuild: built again, once
        ran, summary = runs("--entitydb-rebuild")
        assert ran == 1
        assert sorted(summary.values()) == [BUILT, COPIED]
        assert runs() == (0, dict.fromkeys(kept, REUSED))
        # a changed revision file: built again, a new template, the old one dropped
        revision.write_text(revision.read_text() + "\n# reviewed\n")
        ran, summary = runs()
        assert ran == 1
        assert sorted(summary.values()) == [BUILT, COPIED]
        assert server_databases(url, base, templates=True) - kept != {template}
        assert runs() == (0, dict.fromkeys(kept, REUSED))
        # the database named on the command line untouched
        assert table_names(url) == set()
    finally:
        drop()
    everything = server_databases(server_url(server).render_as_string(False), base, templates=True)
    assert everything == set()


LEFT_BEHIND_TESTS = """
import os
import signal

import pytest
import sqlalchemy as sa


@pytest.mark.parametrize("n", range(4))
def test_item(n, entitydb_transaction, client):
    assert client.post("/items", json={"name": f"item-{n}"}).status_code == 201
    assert client.get("/items").json == [f"item-{n}"]


def test_zz_last(entitydb_transaction, entitydb_url):
    end = os.environ.get("SHOP_END")
    if end:  # committed for good, outside the test's transaction
        engine = sa.create_engine(entitydb_url)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO items (name) VALUES ('left behind')"))
        engine.dispose()
    if end == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("end", ["commit", "kill"])
def test_rows_left_by_a_dirty_or_killed_run_are_not_seen_by_the_next_run(
    shop: pytest.Pytester,
    server: str,
    end: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, drop = create_database(server, tmp_path)
    name = f"{sa.make_url(url).database}_kept_gw0"
    try:
        logged_migrations(shop, tmp_path, monkeypatch)
        shop.makepyfile(test_left=LEFT_BEHIND_TESTS)
        args = ("-n", "1", "--max-worker-restart=0", f"--entitydb-url={url}")
        run(shop, *args).assert_outcomes(passed=5)
        assert kept_summary(run(shop, *args)) == {name: REUSED}

        monkeypatch.setenv("SHOP_END", end)
        result = run(shop, *args)
        monkeypatch.delenv("SHOP_END")

        assert result.ret != 0 if end == "kill" else result.ret == 0
        if end == "commit":
            result.stdout.fnmatch_lines(
                [
                    f"flask-entitydb: kept test database '{name}' was written to outside the"
                    " tests' transactions (its tables do not have the rows they had when"
                    " built): the next run fills it afresh"
                ]
            )
        # the row is there, but the next run does not use the database as it is
        kept_url = sa.make_url(url).set(database=name).render_as_string(hide_password=False)
        assert scalar(kept_url, "SELECT count(*) FROM items") == 1
        result = run(shop, *args)
        result.assert_outcomes(passed=5)  # test_item sees its own row only
        assert kept_summary(result) == {name: COPIED}
        assert scalar(kept_url, "SELECT count(*) FROM items") == 0
        assert kept_summary(run(shop, *args)) == {name: REUSED}
    finally:
        drop()


CONCURRENT_KEPT_TESTS = """
import os
import time
from pathlib import Path

import sqlalchemy as sa

FLAGS = Path({flags!r})


def test_item(entitydb_transaction, client, entitydb_url):
    run_name = os.environ["CONCURRENT_RUN"]
    (FLAGS / run_name).write_text(sa.make_url(entitydb_url).database)
    assert client.post("/items", json={{"name": run_name}}).status_code == 201
    if run_name == "A":  # hold the kept database until the second run has ended
        deadline = time.monotonic() + 300
        while not (FLAGS / "B-done").exists():
            assert time.monotonic() < deadline, "the second run did not end"
            time.sleep(0.1)
    assert client.get("/items").json == [run_name]
"""


@pytest.mark.parametrize("server", SERVERS)
def test_a_second_run_at_the_same_time_does_not_take_the_kept_databases(
    shop: pytest.Pytester, server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, drop = create_database(server, tmp_path)
    base = sa.make_url(url).database or ""
    flags = tmp_path / "flags"
    flags.mkdir()
    try:
        logged_migrations(shop, tmp_path, monkeypatch)
        shop.makepyfile(test_concurrent=CONCURRENT_KEPT_TESTS.format(flags=str(flags)))
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "1"]
        command += [f"--entitydb-url={url}", f"--basetemp={tmp_path / 'A'}"]
        first = subprocess.Popen(
            command, cwd=shop.path, env={**os.environ, "CONCURRENT_RUN": "A"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while not (flags / "A").exists() and first.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        monkeypatch.setenv("CONCURRENT_RUN", "B")

        second = run(shop, "-n", "1", f"--entitydb-url={url}")

        (flags / "B-done").write_text("")
        output = first.communicate(timeout=300)[0]
        assert first.returncode == 0, output
        second.assert_outcomes(passed=1)
        assert (flags / "A").read_text() == f"{base}_kept_gw0"
        assert re.fullmatch(rf"{base}_\d{{14}}_[0-9a-f]{{8}}_gw0", (flags / "B").read_text())
        assert kept_summary(second) == {}  # it used and dropped a database of its own
        assert f"flask-entitydb: kept test database '{base}_kept_gw0': {BUILT}" in output
        assert server_databases(url, base) == {f"{base}_kept_gw0"}
    finally:
        drop()
