"""The pytest plugin with several databases (binds): each bind gets a test database of its
own (per xdist worker), built by its migrations and joined in each test's transaction; an
app whose bind points elsewhere is refused before a test touches it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers.databases import create_database
from helpers.plugin_runs import clean_environment, run, server_databases, table_names

pytest_plugins = ["pytester"]

SHOP_INIT = """
import sqlalchemy as sa
from flask import Flask, request

from flask_entitydb import EntityDB

from .entities.hit_entity import Hit
from .entities.item_entity import Item

db = EntityDB()


def create_app(config=None):
    app = Flask(__name__)
    app.config.update(config or {})
    db.init_app(app)

    @app.post("/items")
    def add_item():
        name = request.json["name"]
        db.session.add(Item(name=name))
        db.session.add(Hit(path=f"/items/{name}"))
        db.session.commit()  # one commit, two databases
        return {"name": name}, 201

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

HIT_ENTITY = """
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from flask_entitydb import Entity


class Hit(Entity):
    __tablename__ = "hits"
    __bind_key__ = "stats"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(sa.String(80))
"""

CONFTEST = """
import pytest

from shop import create_app


@pytest.fixture
def app(entitydb_url, entitydb_binds):
    config = {"DB_CONNECTION_STRING": entitydb_url, "ENTITYDB_BINDS": entitydb_binds}
    return create_app({**config, "TESTING": True})
"""

CONFTEST_WITHOUT_BINDS = """
import pytest

from shop import create_app


@pytest.fixture
def app(entitydb_url):
    return create_app({"DB_CONNECTION_STRING": entitydb_url, "TESTING": True})
"""

TESTS = """
import json
import os

import pytest
import sqlalchemy as sa

from flask_entitydb.pytest_plugin import check_migrations
from shop import db
from shop.entities.hit_entity import Hit
from shop.entities.item_entity import Item

SEEN = {seen!r}


@pytest.mark.parametrize("n", range(4))
def test_a_view_commits_to_both_databases(n, app, entitydb_transaction, client):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    engines = app.extensions["sqlalchemy"].engines
    used = {{str(key): engine.url.database for key, engine in engines.items()}}
    with open(os.path.join(SEEN, worker), "w") as file:
        json.dump(used, file)

    assert client.post("/items", json={{"name": f"item-{{n}}"}}).status_code == 201

    # the request committed to both databases; the test sees both rows, and only them
    assert db.session.scalars(sa.select(Item.name)).all() == [f"item-{{n}}"]
    assert db.session.scalars(sa.select(Hit.path)).all() == [f"/items/item-{{n}}"]
    stats = entitydb_transaction.bind_connections["stats"]
    assert stats.scalar(sa.text("SELECT count(*) FROM hits")) == 1


def test_migrations(app):
    check_migrations(app)
"""


@pytest.fixture
def shop(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> pytest.Pytester:
    """The example app with an entity on the bind 'stats', and its migrations (made on
    SQLite) for both databases."""
    clean_environment(monkeypatch)
    monkeypatch.delenv("DB_CONNECTION_STRING_STATS", raising=False)
    pytester.mkpydir("shop")
    pytester.mkpydir("shop/entities")
    (pytester.path / "shop" / "__init__.py").write_text(SHOP_INIT)
    (pytester.path / "shop" / "entities" / "item_entity.py").write_text(ITEM_ENTITY)
    (pytester.path / "shop" / "entities" / "hit_entity.py").write_text(HIT_ENTITY)
    env = {
        **os.environ,
        "DB_CONNECTION_STRING": f"sqlite:///{tmp_path / 'make_main.sqlite3'}",
        "DB_CONNECTION_STRING_STATS": f"sqlite:///{tmp_path / 'make_stats.sqlite3'}",
    }
    for command in (["init"], ["migrate", "-m", "first"]):
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "shop", "db", *command],
            cwd=pytester.path, env=env, check=True, capture_output=True,
        )  # fmt: skip
    assert list(
        (pytester.path / "shop" / "migrations" / "binds" / "stats" / "versions").glob("*.py")
    )
    return pytester


@pytest.fixture
def real_databases(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """The app's "real" databases, main and stats, set in the environment as a developer's
    shell has them; the tests must leave both untouched."""
    main, drop_main = create_database(backend, tmp_path)
    stats, drop_stats = create_database(backend, tmp_path)
    monkeypatch.setenv("DB_CONNECTION_STRING", main)
    monkeypatch.setenv("DB_CONNECTION_STRING_STATS", stats)
    yield main, stats
    drop_main()
    drop_stats()


def test_a_bind_gets_its_own_test_database_per_worker_joined_in_the_transaction(
    shop: pytest.Pytester,
    backend: str,
    database_url: str,
    real_databases: tuple[str, str],
    tmp_path: Path,
) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    shop.makeconftest(CONFTEST)
    shop.makepyfile(test_binds=TESTS.format(seen=str(seen)))
    args = ["-n", "2"]
    if backend != "sqlite":  # SQLite: the default, throwaway files
        args.append(f"--entitydb-url={database_url}")

    result = run(shop, *args)

    result.assert_outcomes(passed=5)
    used = {path.name: json.loads(path.read_text()) for path in seen.iterdir()}
    assert set(used) == {"gw0", "gw1"}
    stats = {worker: databases["stats"] for worker, databases in used.items()}
    assert stats["gw0"] != stats["gw1"]
    real_main, real_stats = real_databases
    assert sa.make_url(real_stats).database not in stats.values()
    # neither real database was touched: no table, so no row
    assert table_names(real_main) == set()
    assert table_names(real_stats) == set()
    if backend != "sqlite":
        main = sa.make_url(database_url).database
        base = f"{main}_stats"
        for worker, name in stats.items():
            assert name == f"{base}_kept_{worker}"
        # kept for the next run, like the main database's
        assert server_databases(database_url, base) == {f"{base}_kept_gw0", f"{base}_kept_gw1"}
        assert table_names(database_url) == set()
        # which uses each of them as it is
        again = run(shop, *args)
        again.assert_outcomes(passed=5)
        reused = [line for line in again.outlines if line.endswith("left clean by the last run)")]
        assert sorted(reused) == [
            f"flask-entitydb: kept test database '{name}': reused (same migrations, left clean"
            " by the last run)"
            for name in sorted(
                f"{prefix}_kept_{worker}" for prefix in (main, base) for worker in ("gw0", "gw1")
            )
        ]


def test_an_app_whose_bind_is_not_a_test_database_is_refused(
    shop: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_stats = tmp_path / "real_stats.sqlite3"
    monkeypatch.setenv("DB_CONNECTION_STRING_STATS", f"sqlite:///{real_stats}")
    shop.makeconftest(CONFTEST_WITHOUT_BINDS)
    shop.makepyfile(
        test_refused="""
        def test_write(entitydb_transaction, client):
            client.post("/items", json={"name": "lost"})
        """
    )

    result = run(shop)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*The 'app' fixture's bind 'stats' uses 'sqlite:///*real_stats.sqlite3'"
            " (DB_CONNECTION_STRING_STATS in the environment), not a test database of this run;"
            " a test would write there. Build the app with app.config[[]'ENTITYDB_BINDS'[]] ="
            " entitydb_binds (the 'entitydb_binds' fixture: a test database per bind)"
            " before EntityDB.init_app."
        ]
    )
    assert not real_stats.exists()
