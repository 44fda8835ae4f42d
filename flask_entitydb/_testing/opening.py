"""Which database a pytest session tests against: the URL given (checked as the app would
check it), a throwaway SQLite file by default, and under xdist a database per worker."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from flask_entitydb._testing.database import EntityDBTestDatabase
from flask_entitydb._testing.failures import check_reachable, exit_unreachable, fail, is_unreachable
from flask_entitydb._testing.options import URL_ENV, URL_SOURCE, schema_mode, url_option, worker_id
from flask_entitydb._testing.workers import (
    RunTag,
    admin_engine,
    create_worker_database,
    drop_stale_databases,
    remove_stale_sqlite_files,
    sqlite_worker_path,
    worker_database_name,
)

if TYPE_CHECKING:
    import sqlalchemy as sa


def open_test_database(
    config: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> EntityDBTestDatabase:
    """Resolve, and create where needed, the database of this session or xdist worker."""
    import sqlalchemy as sa

    from flask_entitydb._settings.masking import mask_text

    raw = url_option(config)
    worker = worker_id(config)
    schema = schema_mode(config)
    if not raw:
        folder = tmp_path_factory.mktemp("entitydb")
        path = folder / f"test_{worker or 'main'}.sqlite3"
        path.unlink(missing_ok=True)
        return EntityDBTestDatabase(sa.URL.create("sqlite", database=str(path)), schema, worker)
    try:
        url = sa.make_url(raw)
    except (sa.exc.ArgumentError, ValueError):
        raise pytest.UsageError(
            f"--entitydb-url / {URL_ENV} is not a database URL: '{mask_text(raw)}'."
        ) from None
    _check_url(url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if worker is None or database in {"", ":memory:"} or database.startswith("file:"):
            return EntityDBTestDatabase(url, schema, worker)
        worker_path = sqlite_worker_path(database, _run_tag(config, worker))
        if os.path.isabs(worker_path):
            remove_stale_sqlite_files(worker_path)
        # a relative path is the app's: in its instance folder (see note_app)
        return EntityDBTestDatabase(url.set(database=worker_path), schema, worker, created=True)
    check_reachable(url, worker)
    if worker is None:
        return EntityDBTestDatabase(url, schema, worker)
    return EntityDBTestDatabase(
        _create_worker_database(url, _run_tag(config, worker)),
        schema,
        worker,
        created=True,
        admin_url=url,
    )


def _check_url(url: sa.URL) -> None:
    """Refuse, as the app would, a URL whose driver is missing or whose ``ssl=`` is invalid."""
    from flask_entitydb._settings.urls import parse_url, prepare_url
    from flask_entitydb.errors import ConfigurationError

    try:
        prepare_url(parse_url(url, URL_SOURCE), URL_SOURCE)
    except ConfigurationError as exc:
        raise pytest.UsageError(str(exc)) from None


def _run_tag(config: pytest.Config, worker: str) -> RunTag:
    workerinput = getattr(config, "workerinput", None) or {}
    return RunTag.for_worker(worker, str(workerinput.get("testrunuid") or os.urandom(8).hex()))


def _create_worker_database(url: sa.URL, tag: RunTag) -> sa.URL:
    """Create this worker's own database on the server of ``url``, after dropping those
    that crashed runs left behind."""
    import sqlalchemy as sa

    base = url.database or "entitydb_test"
    name = worker_database_name(base, tag)
    engine = admin_engine(url)
    try:
        with engine.connect() as conn:
            drop_stale_databases(conn, base)
            create_worker_database(conn, name)
    except sa.exc.DBAPIError as exc:
        if is_unreachable(url, exc):
            exit_unreachable(url, exc, tag.worker)
        fail(
            f"Cannot create the test database '{name}' for this xdist worker: "
            f"{exc.orig}; the test user needs the CREATE and DROP privileges."
        )
    finally:
        engine.dispose()
    return url.set(database=name)
