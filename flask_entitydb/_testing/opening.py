"""Which databases a pytest session tests against: the URL given (checked as the app would
check it), a throwaway SQLite file by default, and under xdist a database per worker; for
each other bind of the app, a test database of its own (:func:`open_bind_database`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import pytest

from flask_entitydb._testing.database import EntityDBTestDatabase
from flask_entitydb._testing.failures import check_reachable, exit_unreachable, fail, is_unreachable
from flask_entitydb._testing.kept import Kept, claim, kept_database_name
from flask_entitydb._testing.options import (
    URL_SOURCE,
    bind_url_option,
    bind_url_source,
    schema_mode,
    url_option,
    worker_id,
)
from flask_entitydb._testing.templates import latest_template
from flask_entitydb._testing.workers import (
    MAIN_WORKER,
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
    worker = worker_id(config)
    tag = _run_tag(config, worker)
    database = _open(config, tmp_path_factory, url_option(config), URL_SOURCE, None, tag)
    database.open_bind = partial(open_bind_database, config, tmp_path_factory, database, tag)
    database.report = _reporter(config)
    database.summary = _summary(config)
    _share_run(database, config, tag)
    database.test_files = (*config.getini("python_files"), "conftest.py")
    return database


def _share_run(database: EntityDBTestDatabase, config: pytest.Config, tag: RunTag) -> None:
    database.run = tag.run
    database.rebuild = bool(config.getoption("entitydb_rebuild"))


def _reporter(config: pytest.Config) -> Callable[[str], None]:
    """Write a line on pytest's terminal (in an xdist worker, which has none: stderr)."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def report(line: str) -> None:
        if terminal is None:
            sys.stderr.write(line + "\n")
        elif capture is None:
            terminal.write_line(line)
        else:
            # during a test's setup pytest captures the output: show the line now
            with capture.global_and_fixture_disabled():
                terminal.write_line(line)

    return report


def open_bind_database(
    config: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    main: EntityDBTestDatabase,
    tag: RunTag,
    key: str,
) -> EntityDBTestDatabase:
    """The test database of bind ``key``: the one ``--entitydb-bind-url key=URL`` /
    ``ENTITYDB_TEST_URL_<KEY>`` names (per worker under xdist, as the main one), else one
    the plugin makes next to the main test database and drops at the end:
    ``<name>_<key>_<UTC time>_<run>_<worker or main>`` on its server, or a throwaway SQLite
    file when the main one is SQLite. Never the bind's own URL."""
    raw = bind_url_option(config, key)
    if raw:
        database = _open(config, tmp_path_factory, raw, bind_url_source(key), key, tag)
        database.report = main.report
        database.summary = main.summary
        _share_run(database, config, tag)
        return database
    schema = schema_mode(config)
    if main.url.get_backend_name() == "sqlite":
        import sqlalchemy as sa

        path = tmp_path_factory.mktemp("entitydb") / f"test_{main.worker or 'main'}_{key}.sqlite3"
        path.unlink(missing_ok=True)
        url = sa.URL.create("sqlite", database=str(path))
        return EntityDBTestDatabase(url, schema, main.worker, key=key, report=main.report)
    admin = main.admin_url or main.url
    base = f"{admin.database or 'entitydb_test'}_{key}"
    url, template, kept = _worker_database(admin, base, tag, schema, rebuild=main.rebuild)
    return EntityDBTestDatabase(
        url,
        schema,
        main.worker,
        key=key,
        created=True,
        admin_url=admin,
        report=main.report,
        summary=main.summary,
        run=tag.run,
        rebuild=main.rebuild,
        created_from=template,
        kept=kept,
    )


def _open(
    config: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    raw: str | None,
    source: str,
    key: str | None,
    tag: RunTag,
) -> EntityDBTestDatabase:
    import sqlalchemy as sa

    from flask_entitydb._settings.masking import mask_text

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
        raise pytest.UsageError(f"{source} is not a database URL: '{mask_text(raw)}'.") from None
    _check_url(url, source)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if worker is None or database in {"", ":memory:"} or database.startswith("file:"):
            return EntityDBTestDatabase(url, schema, worker, key=key)
        worker_path = sqlite_worker_path(database, tag)
        if os.path.isabs(worker_path):
            remove_stale_sqlite_files(worker_path)
        # a relative path is the app's: in its instance folder (see note_app)
        return EntityDBTestDatabase(
            url.set(database=worker_path), schema, worker, key=key, created=True
        )
    if worker is None:
        check_reachable(url, worker)
        return EntityDBTestDatabase(url, schema, worker, key=key)
    rebuild = bool(config.getoption("entitydb_rebuild"))
    base = url.database or "entitydb_test"
    made, template, kept = _worker_database(url, base, tag, schema, rebuild=rebuild)
    return EntityDBTestDatabase(
        made,
        schema,
        worker,
        key=key,
        created=True,
        admin_url=url,
        created_from=template,
        kept=kept,
    )


def _check_url(url: sa.URL, source: str) -> None:
    """Refuse, as the app would, a URL whose driver is missing or whose ``ssl=`` is invalid."""
    from flask_entitydb._settings.urls import parse_url, prepare_url
    from flask_entitydb.errors import ConfigurationError

    try:
        prepare_url(parse_url(url, source), source)
    except ConfigurationError as exc:
        raise pytest.UsageError(str(exc)) from None


def _run_tag(config: pytest.Config, worker: str | None) -> RunTag:
    workerinput = getattr(config, "workerinput", None) or {}
    run = str(workerinput.get("testrunuid") or os.urandom(8).hex())
    return RunTag.for_worker(worker or MAIN_WORKER, run)


def _summary(config: pytest.Config) -> Callable[[str], None]:
    """Keep a line for the end-of-run summary: an xdist worker sends it to the controller
    with its results (``workeroutput``), which writes it (``pytest_terminal_summary``)."""

    def note(line: str) -> None:
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput.setdefault("entitydb_summary", []).append(line)

    return note


def _worker_database(
    url: sa.URL, base: str, tag: RunTag, schema: str, *, rebuild: bool
) -> tuple[sa.URL, str | None, Kept | None]:
    """The database of this worker on the server of ``url``: with the migrations, the
    worker's kept database (:mod:`~flask_entitydb._testing.kept`) unless another run holds
    it; else one of this run, dropped at the end. Returns its URL, the template it was
    made from (if any) and the kept database taken."""
    if schema == "migrations":
        taken = _take_kept(url, base, tag, rebuild=rebuild)
        if taken is not None:
            return taken
    else:
        check_reachable(url, None if tag.worker == MAIN_WORKER else tag.worker)
    made, template = _create_worker_database(
        url, base, tag, reuse=schema == "migrations" and not rebuild
    )
    return made, template, None


def _take_kept(
    url: sa.URL, base: str, tag: RunTag, *, rebuild: bool
) -> tuple[sa.URL, str | None, Kept] | None:
    """Take this worker's kept database, creating it (on PostgreSQL from the newest
    template of ``base``) when there is none; ``None`` when another run holds it."""
    import sqlalchemy as sa

    name = kept_database_name(base, tag.worker)
    worker = None if tag.worker == MAIN_WORKER else tag.worker
    engine = admin_engine(url)
    try:
        lock = engine.connect()  # the first connection of the worker: is the server there?
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        exit_unreachable(url, exc, worker)
    template = None
    try:
        kept = claim(engine, lock, name)
        if kept is None:
            return None
        try:
            conn = kept.lock
            drop_stale_databases(conn, base)
            if not kept.existed:
                template = latest_template(conn, base) if not rebuild else None
            if not kept.existed and template is not None:
                try:
                    create_worker_database(conn, name, template=template)
                except sa.exc.DBAPIError:  # dropped or in use right now: start empty
                    template = None
            if not kept.existed and template is None:
                create_worker_database(conn, name)
        except BaseException:
            kept.lock.close()
            kept.engine.dispose()
            raise
    except sa.exc.DBAPIError as exc:
        if is_unreachable(url, exc):
            exit_unreachable(url, exc, worker)
        fail(
            f"Cannot create the test database '{name}': {exc.orig}; the test user needs"
            " the CREATE and DROP privileges."
        )
    return url.set(database=name), template, kept


def _create_worker_database(
    url: sa.URL, base: str, tag: RunTag, *, reuse: bool = True
) -> tuple[sa.URL, str | None]:
    """Create a database of this run (``<base>_<time>_<run>_<worker>``) on the server of
    ``url``, after dropping those of ``base`` that crashed runs left behind; on PostgreSQL
    as a copy of the newest schema template of ``base``, when there is one (and
    ``reuse``). Returns its URL and that template."""
    import sqlalchemy as sa

    name = worker_database_name(base, tag)
    engine = admin_engine(url)
    template = None
    try:
        with engine.connect() as conn:
            drop_stale_databases(conn, base)
            template = latest_template(conn, base) if reuse else None
            if template is not None:
                try:
                    create_worker_database(conn, name, template=template)
                except sa.exc.DBAPIError:  # dropped or in use right now: start empty
                    template = None
            if template is None:
                create_worker_database(conn, name)
    except sa.exc.DBAPIError as exc:
        if is_unreachable(url, exc):
            exit_unreachable(url, exc, None if tag.worker == MAIN_WORKER else tag.worker)
        fail(
            f"Cannot create the test database '{name}': {exc.orig}; the test user needs"
            " the CREATE and DROP privileges."
        )
    finally:
        engine.dispose()
    return url.set(database=name), template
