"""Fixtures shared by the whole suite.

Database-facing tests take ``database_url``: it is parametrized over SQLite, MariaDB/MySQL
and PostgreSQL and gives each test its own freshly created database, dropped afterwards.
The server tests need ``ENTITYDB_TEST_MYSQL_URL`` / ``ENTITYDB_TEST_POSTGRESQL_URL``
(a URL of a database the test user can connect to, e.g. ``.../test``); when unset they
skip, unless ``ENTITYDB_TEST_REQUIRE_SERVERS=1`` (set by ``.ci/run``), which turns the
skip into a failure.

``package`` is a throwaway Flask app package (``helpers.migration_apps``) on the database
of ``package_url`` (``database_url`` unless a module overrides it); ``sqlite_package`` one
on a SQLite file. Markers: see ``helpers.markers``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from helpers.databases import fresh_database
from helpers.markers import mark_and_record
from helpers.migration_apps import AppPackage, make_package


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers from the fixtures a test takes; every test's markers into the junit XML."""
    for item in items:
        mark_and_record(item)


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
    yield from fresh_database(backend, tmp_path)


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


@pytest.fixture
def package_url(database_url: str) -> str:
    """The database of the ``package`` fixture's app: ``database_url`` here; a module
    overrides this fixture to give its packages another database."""
    return database_url


@pytest.fixture
def package(
    tmp_path: Path, package_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppPackage]:
    """A throwaway Flask app package (``helpers.migration_apps``) on ``package_url``."""
    yield from make_package(tmp_path, package_url, monkeypatch)


@pytest.fixture
def sqlite_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppPackage]:
    """A package on a SQLite file, for tests whose point is the same on every backend."""
    yield from make_package(tmp_path, f"sqlite:///{tmp_path / 'app.sqlite3'}", monkeypatch)
