"""The test database of one pytest session or xdist worker (``entitydb_database``): its
schema brought to head once, its shared connection, and dropping it at the end."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask_entitydb._testing.failures import fail, fail_migration, guard_connect
from flask_entitydb._testing.options import URL_ENV, SchemaMode
from flask_entitydb._testing.schema import (
    empty_database,
    missing_tables,
    tables_were_dropped,
    watch_drops,
)
from flask_entitydb._testing.workers import (
    admin_engine,
    base_of,
    create_worker_database,
    drop_database,
    remove_sqlite_file,
    remove_stale_sqlite_files,
)

if TYPE_CHECKING:
    import sqlalchemy as sa
    from flask import Flask

    from flask_entitydb._testing.counters import Counters
    from flask_entitydb._testing.kept import Kept
    from flask_entitydb.state import EntityDBState

# The test databases of this process's pytest session, by URL (rendered with password);
# check_migrations() refuses to downgrade any other database.
_in_use: dict[str, EntityDBTestDatabase] = {}


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
    key: str | None = None
    """The bind this database stands in for (``None``: the app's default database)."""
    binds: dict[str, EntityDBTestDatabase] = field(default_factory=dict)
    """The test databases of the app's other binds, made on first use (:meth:`bind`)."""
    open_bind: Callable[[str], EntityDBTestDatabase] | None = None
    report: Callable[[str], None] = print
    """Shows one line to the person running the tests (pytest's terminal)."""
    summary: Callable[[str], None] = lambda line: None
    """Keeps one line for the summary at the end of the run (from an xdist worker)."""
    kept: Kept | None = None
    """The worker database kept between runs that this database is, if it is one
    (:mod:`~flask_entitydb._testing.kept`): not dropped at the end."""
    run: str = ""
    """This run's id (the same in every xdist worker)."""
    created_from: str | None = None
    """The schema template this database was made from at the start of the session."""
    rebuild: bool = False
    """``--entitydb-rebuild``: build the schema with the migrations, not from a template."""
    test_files: tuple[str, ...] = ("test_*.py", "*_test.py", "conftest.py")
    """Patterns of test module file names (pytest's ``python_files``, ``conftest.py``):
    entities defined in such modules are left out of ``check_migrations``."""
    counters: Counters | None = None
    """The auto-increment counters / sequences as the schema was built (``None``: not
    read yet), put back before each test (:mod:`~flask_entitydb._testing.counters`)."""
    sqlite_file: str | None = None
    """The SQLite file, once known: a relative path in :attr:`url` is resolved by the app,
    in its instance folder, so the file is known when the first app uses it."""
    _last_engine: sa.Engine | None = None
    _shared_engine: sa.Engine | None = None

    @property
    def url_string(self) -> str:
        """The URL with its password, for ``DB_CONNECTION_STRING``."""
        return self.url.render_as_string(hide_password=False)

    def bind(self, key: str) -> EntityDBTestDatabase:
        """The test database of bind ``key`` (made on first use, for this worker)."""
        database = self.binds.get(key)
        if database is None:
            if self.open_bind is None:
                fail(f"The test database of the bind '{key}' cannot be made here.")
            database = self.binds[key] = self.open_bind(key)
        return database

    def state_of(self, app: Flask) -> EntityDBState:
        """The EntityDB state of ``app``; fails the test when ``app`` does not use EntityDB
        or uses a database (of any bind) that is not one of this test run's."""
        from flask_entitydb._settings.masking import mask_url
        from flask_entitydb.state import get_state

        state = get_state(app, optional=True)
        if state is None:
            fail(
                f"The 'app' fixture's app '{app.import_name}' does not use EntityDB; the"
                " entitydb_* fixtures need an app set up with EntityDB(app) or"
                " db.init_app(app)."
            )
        if not same_database(state.settings.url, self.url):
            fail(
                f"The 'app' fixture's database is '{mask_url(state.settings.url)}', not this"
                f" test session's database '{mask_url(self.url)}'; build the app with"
                " app.config['DB_CONNECTION_STRING'] = entitydb_url (the 'entitydb_url'"
                " fixture) before EntityDB.init_app."
            )
        for key, bind in state.settings.binds.items():
            ours = self.binds.get(key)
            if ours is None or not same_database(bind.primary.url, ours.url):
                fail(
                    f"The 'app' fixture's bind '{key}' uses '{mask_url(bind.primary.url)}'"
                    f" ({bind.primary.url_source}), not a test database of this run; a test"
                    " would write there. Build the app with app.config['ENTITYDB_BINDS'] ="
                    " entitydb_binds (the 'entitydb_binds' fixture: a test database per bind)"
                    " before EntityDB.init_app."
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
            for bind, engine in bind_engines(state).items():
                self.binds[bind]._dispose_previous_engine(engine)
                self.binds[bind].note_app_engine(engine)
        key = state.settings.migrations_dir
        if key in self.prepared:
            if tables_were_dropped():
                with app.app_context():
                    self._rebuild_if_emptied(app, state)
            return state
        watch_drops()
        with app.app_context():
            if self.schema == "create_all":
                guard_connect(self.url, self.worker, state.db.create_all)
            else:
                _build(app, state, self)
                for bind in state.settings.binds:
                    _build(app, state, self.binds[bind])
        tables_were_dropped()  # the build's own drops, if any
        self.prepared[key] = self.schema
        self.schema_changed()
        return state

    def schema_changed(self) -> None:
        """Forget the recorded counters (of the binds too): the schema was built again."""
        self.counters = None
        for bind in self.binds.values():
            bind.counters = None

    def recount_kept(self) -> None:
        """After ``check_migrations`` (which migrated the schema down and up again, and
        wrote to the migration journal): count the rows of the kept databases again, as
        the state to find at the end of the session."""
        from flask_entitydb._testing.kept import row_counts

        for database in (self, *self.binds.values()):
            kept = database.kept
            if kept is None or kept.print_ is None:
                continue
            engine = admin_engine(database.url)
            try:
                with engine.connect() as conn:
                    kept.rows = row_counts(conn)
            finally:
                engine.dispose()

    def _rebuild_if_emptied(self, app: Flask, state: EntityDBState) -> None:
        """Build the schema again where the app dropped entities' tables (its own
        ``drop_all()``) while the version table still says head."""
        from flask_entitydb._engine.routes import tables_of
        from flask_entitydb._settings.masking import mask_url

        engines: dict[str | None, sa.Engine] = {None: state.db.engine}
        engines.update(bind_engines(state))
        for key, engine in engines.items():
            database = self if key is None else self.binds[key]
            tables = tables_of(state.db.metadata, key)
            missing = missing_tables(engine, tables)
            if not missing:
                continue
            names = ", ".join(f"'{name}'" for name in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            if self.schema == "create_all":
                state.db.metadata.create_all(engine, tables=tables)
                how = "created them again (create_all)"
            else:
                empty_database(engine, state.db.metadata, tables)
                _upgrade_head(app, state, database)
                how = "emptied it and ran the migrations again"
            self.report(
                f"flask-entitydb: the test database '{mask_url(database.url)}' lost the"
                f" tables {names}{more} (dropped by the app, e.g. db.drop_all() in a"
                f" fixture) while its schema counted as built; {how}."
            )
        tables_were_dropped()
        self.schema_changed()

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
        """Dispose the engines used; drop the database (and those of the binds) if the
        plugin created it."""
        for bind in self.binds.values():
            bind.close()
        for engine in {id(e): e for e in (self._last_engine, self._shared_engine) if e}.values():
            engine.dispose()
        self._last_engine = self._shared_engine = None
        if self.kept is not None:
            self._release_kept(self.kept)
            return
        if not self.created:
            return
        if self.url.get_backend_name() == "sqlite":
            path = self.sqlite_file or self.url.database
            if path and os.path.isabs(path):
                remove_sqlite_file(path)
            return
        engine = admin_engine(self.admin_url or self.url)
        try:
            with engine.connect() as conn:
                drop_database(conn, self.url.database or "")
        finally:
            engine.dispose()

    def _release_kept(self, kept: Kept) -> None:
        """Keep the database for the next run: marked as clean when it is."""
        from flask_entitydb._testing.kept import release

        release(kept, self.url, self.counters)
        self.summary(f"flask-entitydb: kept test database '{kept.name}': {kept.how}")
        for note in kept.notes:
            self.summary(f"flask-entitydb: kept test database {note}")

    def note_app(self, state: EntityDBState) -> None:
        """Learn where the app put a SQLite file given by a relative path (its instance
        folder), so the plugin deletes the same file; refuse an app that puts it elsewhere."""
        self.note_app_engine(state.db.engine)

    def note_app_engine(self, engine: sa.Engine) -> None:
        """:meth:`note_app` for the engine of this database in the app."""
        if self.url.get_backend_name() != "sqlite" or not self.url.database:
            return
        if self.url.database == ":memory:" or self.url.database.startswith("file:"):
            return
        path = engine.url.database or ""
        if self.sqlite_file is None:
            self.sqlite_file = path
            if self.created:
                remove_stale_sqlite_files(path)
        elif os.path.realpath(path) != os.path.realpath(self.sqlite_file):
            fail(
                f"The test database 'sqlite:///{self.url.database}' is a relative path, which"
                f" each app resolves in its instance folder: this app uses '{path}', an"
                f" earlier one '{self.sqlite_file}'; give {URL_ENV} / --entitydb-url an"
                " absolute path, or give the apps the same instance folder."
            )


@contextmanager
def in_use(database: EntityDBTestDatabase) -> Iterator[EntityDBTestDatabase]:
    """Count ``database`` as one of this session's test databases until the block ends,
    then close it."""
    _in_use[database.url_string] = database
    try:
        yield database
    finally:
        _in_use.pop(database.url_string, None)
        database.close()


def bind_engines(state: EntityDBState) -> dict[str, sa.Engine]:
    """The primary engine of each bind of the app other than the default database."""
    routes = state.routes
    if routes is None:
        return {}
    return {key: engine for key, engine in routes.engines.items() if key is not None}


def session_database_at(url: sa.URL) -> EntityDBTestDatabase | None:
    """The test database of this session that ``url`` points at, if any."""
    for database in _in_use.values():
        if same_database(url, database.url):
            return database
    return None


def same_database(a: sa.URL, b: sa.URL) -> bool:
    """Whether two URLs name the same database (the same file, for SQLite)."""
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


def _build(app: Flask, state: EntityDBState, database: EntityDBTestDatabase) -> None:
    """Bring ``database`` to head: from the template of the same migrations when the
    plugin made the database on a server (:mod:`~flask_entitydb._testing.templates`),
    else (and to make that template) with the migrations."""
    import sqlalchemy as sa

    from flask_entitydb._engine.routes import tables_of
    from flask_entitydb._settings.masking import mask_text
    from flask_entitydb._testing.kept import built
    from flask_entitydb._testing.templates import build_or_copy, fingerprint
    from flask_entitydb.migrations._folders import bind_directory

    folder = bind_directory(state.settings.migrations_dir, database.key)
    server = database.url.get_backend_name() in ("postgresql", "mysql", "mariadb")
    if not (database.created and server and os.path.isdir(folder)):
        _upgrade_head(app, state, database)
        return
    engine = state.db.engine if database.key is None else bind_engines(state)[database.key]
    fresh = database.kept is None or not database.kept.existed
    if fresh and database.created_from is None and sa.inspect(engine).get_table_names():
        # something (a session fixture?) wrote to it already: neither replace nor copy it
        _upgrade_head(app, state, database)
        return
    print_ = fingerprint(state, folder, tables_of(state.db.metadata, database.key))
    kept = database.kept
    if kept is not None and kept.print_ == print_ and not database.rebuild:
        kept.how = "reused (same migrations, left clean by the last run)"
        return
    created_from = database.created_from
    if kept is not None and kept.existed and created_from is None:
        created_from = ""  # what an earlier run left: start empty
        kept.print_ = None
    try:
        copied = build_or_copy(
            database.url,
            database.admin_url or database.url,
            base_of(database.url.database or ""),
            print_,
            database.run,
            rebuild=database.rebuild,
            build=lambda: _upgrade_head(app, state, database),
            release=engine.dispose,
            created_from=created_from,
        )
        if kept is not None:
            how = "copied from the schema template" if copied else "built with the migrations"
            with engine.connect() as conn:
                built(kept, conn, print_, how)
    except sa.exc.DBAPIError as exc:
        reason = mask_text(str(exc.orig)).strip().splitlines()[0]
        database.report(
            f"flask-entitydb: could not copy the test schema from its template ({reason});"
            " building it with the migrations."
        )
        admin = admin_engine(database.admin_url or database.url)
        try:
            with admin.connect() as conn:
                drop_database(conn, database.url.database or "")
                create_worker_database(conn, database.url.database or "")
        finally:
            admin.dispose()
        engine.dispose()
        _upgrade_head(app, state, database)
        if kept is not None:
            with engine.connect() as conn:
                built(kept, conn, print_, "built with the migrations")


def _upgrade_head(app: Flask, state: EntityDBState, database: EntityDBTestDatabase) -> None:
    from flask_entitydb.migrations._folders import bind_directory
    from flask_entitydb.migrations.binds import using_bind

    folder = bind_directory(state.settings.migrations_dir, database.key)
    if not os.path.isdir(folder):
        which = "" if database.key is None else f" for the bind '{database.key}'"
        fail(
            f"The app '{app.import_name}' has no migrations folder{which} '{folder}'; create"
            " it with 'flask db init' and 'flask db migrate', or build the test schema"
            " without migrations with --entitydb-schema=create_all (or 'entitydb_schema ="
            " create_all' in the pytest ini file)."
        )
    from flask_entitydb.errors import MigrationError
    from flask_entitydb.migrations import upgrade

    step = "Bringing the test database to head"
    if database.key is not None:
        step += f" (bind '{database.key}')"
    try:
        with using_bind(database.key):
            upgrade(revision="head", app=app)
    except MigrationError as exc:
        fail_migration(database.url, database.worker, step, exc)
