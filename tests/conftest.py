"""Fixtures shared by the whole suite.

Database-facing tests take ``database_url``: it is parametrized over SQLite, MariaDB/MySQL
and PostgreSQL and gives each test its own freshly created database, dropped afterwards.
The server tests need ``ENTITYDB_TEST_MYSQL_URL`` / ``ENTITYDB_TEST_POSTGRESQL_URL``
(a URL of a database the test user can connect to, e.g. ``.../test``); when unset they
skip, unless ``ENTITYDB_TEST_REQUIRE_SERVERS=1`` (set by ``.ci/run``), which turns the
skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

SERVER_ENV = {
    "mysql": "ENTITYDB_TEST_MYSQL_URL",
    "postgresql": "ENTITYDB_TEST_POSTGRESQL_URL",
}


def server_url(backend: str) -> sa.URL:
    """The configured server URL for ``backend``, or skip (fail under CI) if unset."""
    env = SERVER_ENV[backend]
    raw = os.environ.get(env)
    if not raw:
        message = f"{env} is not set; {backend} tests need a running server"
        if os.environ.get("ENTITYDB_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail(message + " (ENTITYDB_TEST_REQUIRE_SERVERS=1)")
        pytest.skip(message)
    return sa.make_url(raw)


def _admin_engine(url: sa.URL) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def create_database(backend: str, tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """Create a fresh, empty database; return its URL and a function that drops it."""
    if backend == "sqlite":
        path = tmp_path / f"test-{uuid.uuid4().hex[:8]}.sqlite3"
        return f"sqlite:///{path}", lambda: None
    base = server_url(backend)
    name = f"edb_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine(base)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        message = f"cannot reach the {backend} test server: {exc.orig}"
        if os.environ.get("ENTITYDB_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail(message)
        pytest.skip(message)

    def drop() -> None:
        force = " WITH (FORCE)" if backend == "postgresql" else ""
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}{force}"))
        engine.dispose()

    url = base.set(database=name)
    return url.render_as_string(hide_password=False), drop


BACKEND_PARAMS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend name: ``sqlite``, ``mysql`` or ``postgresql``."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """URL (with password) of a fresh, empty database on ``backend``."""
    url, drop = create_database(backend, tmp_path)
    yield url
    drop()


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build Flask apps with their instance folder under ``tmp_path``; engines of apps
    set up with EntityDB are disposed at teardown so databases can be dropped."""
    apps: list[Flask] = []

    def factory(import_name: str = "testapp", **config: Any) -> Flask:
        app = Flask(import_name, instance_path=str(tmp_path / f"instance{len(apps)}"))
        app.config.update(TESTING=True, **config)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        fsa = app.extensions.get("sqlalchemy")
        if fsa is not None:
            with app.app_context():
                for engine in fsa.engines.values():
                    engine.dispose()
