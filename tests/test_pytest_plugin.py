"""The pytest plugin, tested the way users meet it: example test suites run by a real
pytest in a subprocess (pytester), against SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

pytest_plugins = ["pytester"]

# -- the example project the subprocess runs -----------------------------------------------

SHOP_INIT = """
from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, jsonify, request

from flask_entitydb import EntityDB

from .entities.item_entity import Item

db = EntityDB()


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
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

SUBPROCESS_ENV = (
    "ENTITYDB_TEST_URL",
    "DB_CONNECTION_STRING",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
)


@pytest.fixture
def shop(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester folder holding the example 'shop' app and its conftest."""
    for name in SUBPROCESS_ENV:
        monkeypatch.delenv(name, raising=False)
    pytester.mkpydir("shop")
    pytester.mkpydir("shop/entities")
    (pytester.path / "shop" / "__init__.py").write_text(SHOP_INIT)
    (pytester.path / "shop" / "entities" / "item_entity.py").write_text(ITEM_ENTITY)
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI_CREATE_ALL)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def scalar(url: str, sql: str) -> object:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text(sql))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


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
        assert databases == {"gw0": f"{base}_gw0", "gw1": f"{base}_gw1"}
        # both were dropped at the end of the run
        listing = (
            "SELECT count(*) FROM pg_database WHERE datname LIKE :pattern"
            if backend == "postgresql"
            else "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE :pattern"
        )
        engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            left = conn.scalar(sa.text(listing), {"pattern": f"{base}\\_gw%"})
        engine.dispose()
        assert left == 0
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
    assert {p.name: p.read_text() for p in seen.iterdir()} == {
        "gw0": str(tmp_path / "suite_gw0.sqlite3"),
        "gw1": str(tmp_path / "suite_gw1.sqlite3"),
    }
    # the plugin's own worker files are removed at the end
    assert sorted(p.name for p in tmp_path.glob("suite*.sqlite3")) == []


# -- failures ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
print("REVISION", migrations.migrate("create items", app=app).revision)
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
    for name in SUBPROCESS_ENV:
        monkeypatch.delenv(name, raising=False)
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
        "entitydb_database",
        "entitydb_url",
        "entitydb_transaction",
        "entitydb_session",
    }
