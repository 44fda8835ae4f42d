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
    (``<name>_<UTC time>_<run>_<worker>``, see ``flask_entitydb.pytest_databases``;
    for SQLite a file per worker).
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

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NoReturn, cast

import pytest

if TYPE_CHECKING:
    import sqlalchemy as sa
    from flask import Flask
    from sqlalchemy import orm

    from flask_entitydb._testing.databases import RunTag
    from flask_entitydb.extension import EntityDB
    from flask_entitydb.state import EntityDBState

URL_ENV = "ENTITYDB_TEST_URL"
"""Environment variable naming the test database (``--entitydb-url`` wins over it)."""

SchemaMode = Literal["migrations", "create_all"]
_SCHEMA_MODES: tuple[SchemaMode, ...] = ("migrations", "create_all")

# URLs (rendered with password) of the test databases of this process's pytest session;
# check_migrations() refuses to downgrade any other database.
_test_databases: dict[str, EntityDBTestDatabase] = {}


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
        "--entitydb-schema",
        dest="entitydb_schema",
        default=None,
        choices=_SCHEMA_MODES,
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
    _schema_mode(config)


# -- the test database -------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


def _exit_unreachable(url: sa.URL, exc: BaseException, worker: str | None) -> NoReturn:
    from flask_entitydb._settings.masking import mask_text, mask_url

    reason = getattr(exc, "orig", None) or exc
    first_line = mask_text(str(reason)).strip().splitlines()[0] if str(reason) else ""
    message = (
        f"flask-entitydb: cannot connect to the test database '{mask_url(url)}'"
        f" ({type(reason).__name__}: {first_line}); start the server or point"
        f" --entitydb-url / {URL_ENV} at a reachable database."
    )
    if worker is None:
        pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)
    # pytest.exit() inside an xdist worker crashes the run with an INTERNALERROR; fail
    # each test instead, without the driver's exception chain
    try:
        pytest.fail(message, pytrace=False)
    except pytest.fail.Exception as failure:
        raise failure from None


def _worker_id(config: pytest.Config) -> str | None:
    """The xdist worker id (``gw0``, ...) of this process, or ``None`` outside xdist."""
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else None


def _run_tag(config: pytest.Config, worker: str) -> RunTag:
    from flask_entitydb._testing.databases import RunTag

    workerinput = getattr(config, "workerinput", None) or {}
    return RunTag.for_worker(worker, str(workerinput.get("testrunuid") or os.urandom(8).hex()))


def _same_database(a: sa.URL, b: sa.URL) -> bool:
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        return _sqlite_key(a) == _sqlite_key(b)
    return (a.host, a.port, a.database) == (b.host, b.port, b.database)


def _sqlite_key(url: sa.URL) -> str:
    database = url.database or ""
    if database in {"", ":memory:"} or database.startswith("file:"):
        return database
    return os.path.realpath(database)


@dataclass
class EntityDBTestDatabase:
    """The database of one pytest session (or xdist worker), from ``entitydb_database``."""

    url: sa.URL
    """Its URL (``url.render_as_string(hide_password=False)`` is ``entitydb_url``)."""
    schema: SchemaMode
    """How :meth:`prepare` builds the schema: ``"migrations"`` or ``"create_all"``."""
    worker: str | None = None
    """The pytest-xdist worker id, or ``None``."""
    created: bool = False
    """Whether the plugin created this database and drops it at the end of the session."""
    admin_url: sa.URL | None = None
    """The URL given by the user, through which a worker's database was created."""
    prepared: dict[str, SchemaMode] = field(default_factory=dict)
    sqlite_file: str | None = None
    """The SQLite file, once known: a relative path in :attr:`url` is resolved by the app,
    in its instance folder, so the file is known when the first app uses it."""
    _last_engine: sa.Engine | None = None
    _shared_engine: sa.Engine | None = None

    @property
    def url_string(self) -> str:
        """The URL with its password, for ``DB_CONNECTION_STRING``."""
        return self.url.render_as_string(hide_password=False)

    def state_of(self, app: Flask) -> EntityDBState:
        """The EntityDB state of ``app``; fails the test when ``app`` does not use EntityDB
        or does not use this database."""
        from flask_entitydb._settings.masking import mask_url
        from flask_entitydb.state import get_state

        state = get_state(app, optional=True)
        if state is None:
            _fail(
                f"The 'app' fixture's app '{app.import_name}' does not use EntityDB; the"
                " entitydb_* fixtures need an app set up with EntityDB(app) or"
                " db.init_app(app)."
            )
        if not _same_database(state.settings.url, self.url):
            _fail(
                f"The 'app' fixture's database is '{mask_url(state.settings.url)}', not this"
                f" test session's database '{mask_url(self.url)}'; build the app with"
                " app.config['DB_CONNECTION_STRING'] = entitydb_url (the 'entitydb_url'"
                " fixture) before EntityDB.init_app."
            )
        return state

    def prepare(self, app: Flask) -> EntityDBState:
        """Bring the schema of this database to head for ``app``, once per session.

        With ``schema="migrations"`` it runs the app's migrations (``upgrade head``);
        with ``"create_all"`` it creates the entities' tables.
        """
        state = self.state_of(app)
        with app.app_context():
            self._dispose_previous_engine(state.db.engine)
            self.note_app(state)
        key = state.settings.migrations_dir
        if key in self.prepared:
            return state
        with app.app_context():
            if self.schema == "create_all":
                _guard_connect(self.url, self.worker, state.db.create_all)
            else:
                _upgrade_head(app, state, self.worker)
        self.prepared[key] = self.schema
        return state

    def _dispose_previous_engine(self, engine: sa.Engine) -> None:
        # A function-scoped 'app' fixture makes an engine (and pool) per test: close the
        # previous one's idle connections now, rather than leave them to the garbage
        # collector (psycopg warns about connections deleted while open).
        last = self._last_engine
        if last is not None and last is not engine and last is not self._shared_engine:
            last.dispose()
        self._last_engine = engine

    def connect(self, app_engine: sa.Engine) -> sa.Connection:
        """A connection for one test's outer transaction.

        It comes from the first app's engine, kept for the whole session, as long as later
        apps use the same URL: a function-scoped ``app`` fixture makes a new engine per
        test, and connecting it (plus SQLAlchemy's first-connect queries) would cost more
        than the isolation itself.
        """
        shared = self._shared_engine
        if shared is None or shared.url != app_engine.url:
            if shared is not None and shared is not self._last_engine:
                shared.dispose()
            shared = self._shared_engine = app_engine
        return shared.connect()

    def close(self) -> None:
        """Dispose the engines used; drop the database if the plugin created it."""
        for engine in {id(e): e for e in (self._last_engine, self._shared_engine) if e}.values():
            engine.dispose()
        self._last_engine = self._shared_engine = None
        if not self.created:
            return
        if self.url.get_backend_name() == "sqlite":
            from flask_entitydb._testing.databases import remove_sqlite_file

            path = self.sqlite_file or self.url.database
            if path and os.path.isabs(path):
                remove_sqlite_file(path)
            return
        _drop_database(self.url, self.admin_url or self.url)

    def note_app(self, state: EntityDBState) -> None:
        """Learn where the app put a SQLite file given by a relative path (its instance
        folder), so the plugin deletes the same file; refuse an app that puts it elsewhere."""
        if self.url.get_backend_name() != "sqlite" or not self.url.database:
            return
        if self.url.database == ":memory:" or self.url.database.startswith("file:"):
            return
        path = state.db.engine.url.database or ""
        if self.sqlite_file is None:
            self.sqlite_file = path
            if self.created:
                from flask_entitydb._testing.databases import remove_stale_sqlite_files

                remove_stale_sqlite_files(path)
        elif os.path.realpath(path) != os.path.realpath(self.sqlite_file):
            _fail(
                f"The test database 'sqlite:///{self.url.database}' is a relative path, which"
                f" each app resolves in its instance folder: this app uses '{path}', an"
                f" earlier one '{self.sqlite_file}'; give {URL_ENV} / --entitydb-url an"
                " absolute path, or give the apps the same instance folder."
            )


def _guard_connect(url: sa.URL, worker: str | None, action: Any) -> Any:
    import sqlalchemy as sa

    try:
        return action()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        if _is_connect_error(url, exc):
            _exit_unreachable(url, exc, worker)
        raise


def _is_connect_error(url: sa.URL, exc: BaseException) -> bool:
    """Whether ``exc`` happened because the server cannot be reached at all."""
    import sqlalchemy as sa

    from flask_entitydb._testing.databases import admin_engine

    engine = admin_engine(url)
    try:
        with engine.connect():
            return False
    except sa.exc.DBAPIError:
        return True
    finally:
        engine.dispose()


def _upgrade_head(app: Flask, state: EntityDBState, worker: str | None) -> None:
    if not os.path.isdir(state.settings.migrations_dir):
        _fail(
            f"The app '{app.import_name}' has no migrations folder"
            f" '{state.settings.migrations_dir}'; create it with 'flask db init' and"
            " 'flask db migrate', or build the test schema without migrations with"
            " --entitydb-schema=create_all (or 'entitydb_schema = create_all' in the pytest"
            " ini file)."
        )
    from flask_entitydb.errors import MigrationError
    from flask_entitydb.migrations import upgrade

    try:
        upgrade("head", app=app)
    except MigrationError as exc:
        _fail_migration(state.settings.url, worker, "Bringing the test database to head", exc)


def _fail_migration(url: sa.URL, worker: str | None, step: str, exc: BaseException) -> NoReturn:
    import sqlalchemy as sa

    cause = exc.__cause__
    if isinstance(cause, (sa.exc.OperationalError, sa.exc.InterfaceError)) and (
        _is_connect_error(url, cause)
    ):
        _exit_unreachable(url, cause, worker)
    _fail(f"{step} with the app's migrations failed: {exc}")


def _check_reachable(url: sa.URL, worker: str | None) -> None:
    import sqlalchemy as sa

    from flask_entitydb._testing.databases import admin_engine

    engine = admin_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        _exit_unreachable(url, exc, worker)
    finally:
        engine.dispose()


def _create_worker_database(url: sa.URL, tag: RunTag) -> sa.URL:
    """Create this worker's own database on the server of ``url``, after dropping those
    that crashed runs left behind."""
    import sqlalchemy as sa

    from flask_entitydb._testing.databases import (
        admin_engine,
        create_worker_database,
        drop_stale_databases,
        worker_database_name,
    )

    base = url.database or "entitydb_test"
    name = worker_database_name(base, tag)
    engine = admin_engine(url)
    try:
        with engine.connect() as conn:
            drop_stale_databases(conn, base)
            create_worker_database(conn, name)
    except sa.exc.DBAPIError as exc:
        if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) and (
            _is_connect_error(url, exc)
        ):
            _exit_unreachable(url, exc, tag.worker)
        _fail(
            f"Cannot create the test database '{name}' for this xdist worker: "
            f"{exc.orig}; the test user needs the CREATE and DROP privileges."
        )
    finally:
        engine.dispose()
    return url.set(database=name)


def _drop_database(url: sa.URL, admin_url: sa.URL) -> None:
    from flask_entitydb._testing.databases import admin_engine, drop_database

    engine = admin_engine(admin_url)
    try:
        with engine.connect() as conn:
            drop_database(conn, url.database or "")
    finally:
        engine.dispose()


def _schema_mode(config: pytest.Config) -> SchemaMode:
    value = config.getoption("entitydb_schema") or config.getini("entitydb_schema")
    if value not in _SCHEMA_MODES:
        raise pytest.UsageError(f"entitydb_schema is '{value}'; use 'migrations' or 'create_all'.")
    return value  # type: ignore[no-any-return]


def open_test_database(
    config: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> EntityDBTestDatabase:
    """Resolve, and create where needed, the database of this session or xdist worker."""
    import sqlalchemy as sa

    from flask_entitydb._settings.masking import mask_text

    raw = config.getoption("entitydb_url") or os.environ.get(URL_ENV)
    worker = _worker_id(config)
    schema = _schema_mode(config)
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
        from flask_entitydb._testing.databases import remove_stale_sqlite_files, sqlite_worker_path

        worker_path = sqlite_worker_path(database, _run_tag(config, worker))
        if os.path.isabs(worker_path):
            remove_stale_sqlite_files(worker_path)
        # a relative path is the app's: in its instance folder (see note_app)
        return EntityDBTestDatabase(url.set(database=worker_path), schema, worker, created=True)
    _check_reachable(url, worker)
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
    from flask_entitydb._testing.databases import URL_SOURCE
    from flask_entitydb.errors import ConfigurationError

    try:
        prepare_url(parse_url(url, URL_SOURCE), URL_SOURCE)
    except ConfigurationError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def entitydb_database(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EntityDBTestDatabase]:
    """The test database of this session (per xdist worker), dropped at the end if the
    plugin created it; its schema is brought to head once, by the first test that uses
    ``entitydb_transaction`` (or by :meth:`EntityDBTestDatabase.prepare`)."""
    database = open_test_database(pytestconfig, tmp_path_factory)
    _test_databases[database.url_string] = database
    try:
        yield database
    finally:
        _test_databases.pop(database.url_string, None)
        database.close()


@pytest.fixture(scope="session")
def entitydb_url(entitydb_database: EntityDBTestDatabase) -> str:
    """The test database URL (with password): pass it to your app factory as
    ``DB_CONNECTION_STRING``."""
    return entitydb_database.url_string


# -- per-test isolation ------------------------------------------------------------------


@dataclass(frozen=True)
class EntityDBTransaction:
    """What ``entitydb_transaction`` yields."""

    db: EntityDB
    """The app's :class:`~flask_entitydb.EntityDB` instance."""
    connection: sa.Connection
    """The connection holding the outer transaction; ``db.session`` runs on it, and so
    can raw SQL that must see the test's rows."""

    @property
    def session(self) -> orm.scoped_session[Any]:
        """``db.session``, bound to :attr:`connection`."""
        return self.db.session


def _begin_sqlite_transaction(connection: sa.Connection, stack: ExitStack) -> None:
    """Make SAVEPOINTs part of the outer transaction on pysqlite.

    In its legacy transaction control (the only one before Python 3.12, the default until
    3.16) sqlite3 emits no BEGIN before a SAVEPOINT, so releasing the session's savepoint
    would commit for good. SQLAlchemy's documented workaround: turn the driver's own
    transaction handling off and emit BEGIN ourselves, on this connection only.
    """
    driver = connection.connection.driver_connection
    legacy = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", -1)
    if getattr(driver, "autocommit", legacy) != legacy:
        connection.begin()  # modern autocommit=False mode: already correct
        return
    saved = driver.isolation_level  # type: ignore[union-attr]
    driver.isolation_level = None  # type: ignore[union-attr]
    stack.callback(setattr, driver, "isolation_level", saved)
    connection.begin()
    connection.exec_driver_sql("BEGIN")


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
    import sqlalchemy as sa
    from flask import current_app

    state = entitydb_database.prepare(app)
    db = cast("EntityDB", state.db)
    factory = db.session.session_factory
    with ExitStack() as stack:
        if not current_app or current_app._get_current_object() is not app:  # type: ignore[attr-defined]
            stack.enter_context(app.app_context())
        try:
            connection = entitydb_database.connect(db.engine)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            _exit_unreachable(state.settings.url, exc, entitydb_database.worker)
        stack.callback(connection.close)
        if connection.dialect.name == "sqlite" and connection.dialect.driver == "pysqlite":
            _begin_sqlite_transaction(connection, stack)
        else:
            connection.begin()
        stack.callback(_rollback, connection)

        saved_kw = dict(factory.kw)
        db.session.remove()
        stack.callback(_restore_factory, factory, saved_kw)
        stack.callback(db.session.remove)
        # EntitySession takes a Connection bind in place of the app's engine
        factory.configure(bind=connection, join_transaction_mode="create_savepoint")
        stack.enter_context(_session_per_request(app, db))
        yield EntityDBTransaction(db=db, connection=connection)


@contextmanager
def _session_per_request(app: Flask, db: EntityDB) -> Iterator[None]:
    """Give every request of ``app`` its own session, closed when the request ends.

    In production each request pushes its own app context, so it gets a new session that
    Flask-SQLAlchemy closes at the end of the request. A request of the test client reuses
    the app context of the test instead (pytest-flask's, or the one this plugin pushed),
    and so would share the test's session: a view that flushes without committing would
    seem to work. So, while a request runs, the test's session is set aside in the scoped
    session's registry; the request's own session joins the test's transaction with its
    own SAVEPOINT, and closing it rolls back whatever the view did not commit.
    """
    from flask import request_started, request_tearing_down

    registry = db.session.registry
    set_aside: list[Any] = []

    def started(sender: Flask, **extra: Any) -> None:
        set_aside.append(registry() if registry.has() else None)
        registry.clear()

    def tearing_down(sender: Flask, **extra: Any) -> None:
        db.session.remove()  # the request's session: rolls back what it did not commit
        outer = set_aside.pop() if set_aside else None
        if outer is not None:
            registry.set(outer)

    request_started.connect(started, app, weak=False)
    request_tearing_down.connect(tearing_down, app, weak=False)
    try:
        yield
    finally:
        request_started.disconnect(started, app)
        request_tearing_down.disconnect(tearing_down, app)


def _rollback(connection: sa.Connection) -> None:
    transaction = connection.get_transaction()
    if transaction is not None and transaction.is_active:
        transaction.rollback()


def _restore_factory(factory: orm.sessionmaker[Any], kw: dict[str, Any]) -> None:
    factory.kw.clear()
    factory.kw.update(kw)


@pytest.fixture
def entitydb_session(entitydb_transaction: EntityDBTransaction) -> orm.scoped_session[Any]:
    """``db.session``, bound to the test's transaction (see ``entitydb_transaction``)."""
    return entitydb_transaction.db.session


# -- migrations self-test ----------------------------------------------------------------


def check_migrations(app: Flask) -> None:
    """Test the app's migrations: upgrade to head, downgrade to base, upgrade again, and
    check that the database then matches the entities (no change without a revision).

    Add it to your suite as one test::

        from flask_entitydb.pytest_plugin import check_migrations

        def test_migrations(app):
            check_migrations(app)

    Downgrading to base drops every table, so it only runs against the test database of
    this pytest session (the ``entitydb_url`` fixture); it leaves the database at head.
    Fails the test with a readable message naming the step or the differences.
    """
    from flask_entitydb.errors import MigrationError
    from flask_entitydb.migrations import check, downgrade, upgrade

    database, state = _test_database_of(app)
    if not os.path.isdir(state.settings.migrations_dir):
        _fail(
            f"check_migrations: the app '{app.import_name}' has no migrations folder"
            f" '{state.settings.migrations_dir}'; create it with 'flask db init' and"
            " 'flask db migrate'."
        )
    key = state.settings.migrations_dir
    from flask import current_app

    if current_app and current_app._get_current_object() is app:  # type: ignore[attr-defined]
        state.db.session.remove()  # a session left open would block DROP TABLE on MySQL
    with app.app_context():
        if database.prepared.get(key) == "create_all":
            # tables made by create_all have no revision: start from an empty schema
            state.db.drop_all()
            database.prepared.pop(key)
        steps: list[tuple[str, Callable[[], object]]] = [
            ("upgrade head", lambda: upgrade("head", app=app)),
            ("downgrade base", lambda: downgrade("base", app=app)),
            ("left-over tables", lambda: _no_entity_tables(state)),
            ("upgrade head again", lambda: upgrade("head", app=app)),
        ]
        for step, run in steps:
            try:
                run()
            except MigrationError as exc:
                _fail_migration(
                    state.settings.url, database.worker, f"check_migrations: '{step}'", exc
                )
        database.prepared[key] = "migrations"
        try:
            result = check(app=app)
        except MigrationError as exc:
            _fail_migration(state.settings.url, database.worker, "check_migrations: 'check'", exc)
    if not result.ok:
        details = "\n".join(result.describe())
        _fail(f"check_migrations: the migrations do not match the entities.\n{details}")


def _no_entity_tables(state: EntityDBState) -> None:
    from sqlalchemy import inspect

    from flask_entitydb.errors import MigrationError

    existing = set(inspect(state.db.engine).get_table_names())
    left = sorted(existing & set(state.db.metadata.tables))
    if left:
        names = ", ".join(f"'{name}'" for name in left)
        raise MigrationError(
            f"after 'downgrade base' the tables {names} still exist; a revision's"
            " downgrade() does not drop what its upgrade() creates."
        )


def _test_database_of(app: Flask) -> tuple[EntityDBTestDatabase, EntityDBState]:
    from flask_entitydb._settings.masking import mask_url
    from flask_entitydb.state import get_state

    state = get_state(app, optional=True)
    if state is None:
        _fail(
            f"check_migrations: the app '{app.import_name}' does not use EntityDB; set it"
            " up with EntityDB(app) or db.init_app(app)."
        )
    for database in _test_databases.values():
        if _same_database(state.settings.url, database.url):
            with app.app_context():
                database.note_app(state)
            return database, state
    _fail(
        f"check_migrations drops every table, so it only runs against this test session's"
        f" database, and the app uses '{mask_url(state.settings.url)}'; build the app with"
        " app.config['DB_CONNECTION_STRING'] = entitydb_url (the 'entitydb_url' fixture)."
    )
