"""A pytest plugin for testing apps that use flask-entitydb against real databases.

It is registered through the ``pytest11`` entry point, so it is available whenever
flask-entitydb is installed, and it does nothing until a test asks for one of its fixtures:
no autouse fixtures, every name prefixed with ``entitydb_``.

Fixtures
--------
``entitydb_url`` (session)
    The URL of this test session's database, with its password; hand it to your app
    factory as ``DB_CONNECTION_STRING``. ``--entitydb-url`` or ``ENTITYDB_TEST_URL`` set
    it; the default is a throwaway SQLite file in pytest's temporary directory. Under
    pytest-xdist every worker of every run gets its own database
    (``<name>_<UTC time>_<run>_<worker>``, see ``flask_entitydb._testing.workers``;
    for SQLite a file per worker).
``entitydb_binds`` (session)
    Bind key -> URL of that bind's test database; hand it to your app factory as
    ``ENTITYDB_BINDS``. Each bind the app uses gets a database of its own (per xdist
    worker), built by that bind's migrations and joined in each test's transaction like
    the main one; ``--entitydb-bind-url KEY=URL`` or ``ENTITYDB_TEST_URL_<KEY>`` name it,
    by default the plugin makes one next to the main test database. An app whose bind
    points anywhere else is refused before any test touches it.
``entitydb_database`` (session)
    An :class:`EntityDBTestDatabase`: creates and drops the per-worker database, and
    brings the schema to head once per session, with the app's real migrations (default)
    or ``create_all`` (``--entitydb-schema=create_all`` or the ``entitydb_schema`` ini
    setting).
``entitydb_transaction`` (function)
    Uses your ``app`` fixture. Runs the test inside an outer transaction on one connection
    that ``db.session`` joins through a SAVEPOINT, so code under test may ``commit()`` and
    ``rollback()`` freely and every row is gone after the test. Each request of the test
    client (pytest-flask's ``client`` or ``app.test_client()``) gets a session of its own,
    joined the same way and closed when the request ends, as in production: what a view
    does not commit is rolled back. Yields an :class:`EntityDBTransaction`.
``entitydb_session`` (function)
    ``db.session`` inside ``entitydb_transaction``.

Helper: :func:`check_migrations` runs the migrations round trip as a one-line test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from flask_entitydb._testing.binds import BindURLs
from flask_entitydb._testing.database import EntityDBTestDatabase, in_use
from flask_entitydb._testing.isolation import EntityDBTransaction, isolated
from flask_entitydb._testing.opening import open_test_database
from flask_entitydb._testing.options import SCHEMA_MODES, URL_ENV, SchemaMode, schema_mode
from flask_entitydb._testing.selftest import check_migrations

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import orm

__all__ = [
    "URL_ENV",
    "EntityDBTestDatabase",
    "EntityDBTransaction",
    "SchemaMode",
    "check_migrations",
    "entitydb_binds",
    "entitydb_database",
    "entitydb_session",
    "entitydb_transaction",
    "entitydb_url",
    "open_test_database",
    "pytest_addoption",
    "pytest_configure",
    "pytest_terminal_summary",
    "pytest_testnodedown",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--entitydb-*`` options and the ``entitydb_schema`` ini setting."""
    group = parser.getgroup("flask-entitydb", "flask-entitydb test database")
    group.addoption(
        "--entitydb-url",
        dest="entitydb_url",
        default=None,
        metavar="URL",
        help=f"database URL for the entitydb_* fixtures (default: ${URL_ENV}, else a"
        " throwaway SQLite file); under xdist each worker gets <name>_<worker>.",
    )
    group.addoption(
        "--entitydb-bind-url",
        dest="entitydb_bind_urls",
        action="append",
        default=[],
        metavar="KEY=URL",
        help="test database of the bind KEY (repeatable; default: $ENTITYDB_TEST_URL_<KEY>,"
        " else one the plugin makes next to the test database and drops at the end).",
    )
    group.addoption(
        "--entitydb-rebuild",
        dest="entitydb_rebuild",
        action="store_true",
        default=False,
        help="build the test schema with the migrations even when a template of the same"
        " migrations is kept on the server from an earlier run.",
    )
    group.addoption(
        "--entitydb-schema",
        dest="entitydb_schema",
        default=None,
        choices=SCHEMA_MODES,
        help="how entitydb_database builds the schema: the app's migrations (default) or"
        " create_all for apps without migrations.",
    )
    parser.addini(
        "entitydb_schema",
        "how entitydb_database builds the schema: 'migrations' (default) or 'create_all'.",
        default="migrations",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Reject an invalid ``entitydb_schema`` ini value at start-up (imports nothing)."""
    schema_mode(config)


@pytest.fixture(scope="session")
def entitydb_database(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EntityDBTestDatabase]:
    """The test database of this session (per xdist worker), dropped at the end if the
    plugin created it; its schema is brought to head once, by the first test that uses
    ``entitydb_transaction`` (or by :meth:`EntityDBTestDatabase.prepare`)."""
    with in_use(open_test_database(pytestconfig, tmp_path_factory)) as database:
        yield database


@pytest.fixture(scope="session")
def entitydb_url(entitydb_database: EntityDBTestDatabase) -> str:
    """The test database URL (with password): pass it to your app factory as
    ``DB_CONNECTION_STRING``."""
    return entitydb_database.url_string


@pytest.fixture(scope="session")
def entitydb_binds(entitydb_database: EntityDBTestDatabase) -> BindURLs:
    """Bind key -> URL (with password) of that bind's test database: pass it to your app
    factory as ``ENTITYDB_BINDS``; the database of a bind is made when the app first asks
    for its key."""
    return BindURLs(entitydb_database)


@pytest.fixture
def entitydb_transaction(
    app: Flask, entitydb_database: EntityDBTestDatabase
) -> Iterator[EntityDBTransaction]:
    """Run the test in an outer transaction that is rolled back afterwards.

    ``db.session`` (in the test, and in every request made through the test client) is
    bound to one connection and joins its transaction with a SAVEPOINT, so
    ``db.session.commit()`` and ``rollback()`` work as in production while every row is
    gone after the test.
    """
    with isolated(app, entitydb_database) as transaction:
        yield transaction


@pytest.fixture
def entitydb_session(entitydb_transaction: EntityDBTransaction) -> orm.scoped_session[Any]:
    """``db.session``, bound to the test's transaction (see ``entitydb_transaction``)."""
    return entitydb_transaction.db.session


_SUMMARY = pytest.StashKey[list[str]]()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist: keep the summary lines a worker sent with its results."""
    lines = getattr(node, "workeroutput", {}).get("entitydb_summary", [])
    node.config.stash.setdefault(_SUMMARY, []).extend(lines)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say what became of the worker databases kept between runs (reused, copied, built)."""
    lines: list[str] = terminalreporter.config.stash.get(_SUMMARY, [])
    for line in sorted(lines):
        terminalreporter.write_line(line)
