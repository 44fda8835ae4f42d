"""What the generated ``env.py`` runs: :func:`run_migrations`.

``env.py`` is a file in the user's repository, so it calls this one public function and
nothing else; everything it does can change in a release without anyone editing their
``env.py``.

Here: the app and database a run is for, the online and ``--sql`` runs, what each backend
needs while migrating. Elsewhere: the autogenerate hooks (:mod:`._environment_hooks`), the
migration lock (:mod:`._locks.hold`), the applied revisions and the error naming a failed
one (:mod:`._progress`).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import click
import sqlalchemy as sa
from alembic import context
from alembic.config import Config
from alembic.util import CommandError
from flask import Flask, current_app, has_app_context

from flask_entitydb._settings.model import DatabaseSettings, Settings
from flask_entitydb.migrations._autogenerate.compare import enable_postgresql_enums
from flask_entitydb.migrations._autogenerate.online_blocks import (
    register_renderer as register_online_ddl,
)
from flask_entitydb.migrations._autogenerate.portable import register_renderer
from flask_entitydb.migrations._autogenerate.safe_forms import (
    register_renderer as register_safe_forms,
)
from flask_entitydb.migrations._connections import closed_after
from flask_entitydb.migrations._environment_hooks import as_list, hook_options
from flask_entitydb.migrations._failures import database_error, filtered, reported_here
from flask_entitydb.migrations._locks.discard import discarded_on_failure
from flask_entitydb.migrations._locks.timeouts import (
    lock_timeout_sql,
    migration_lock_timeout,
    session_setting,
)
from flask_entitydb.migrations._run import (
    VersionHooks,
    changes_database,
    run_of,
)
from flask_entitydb.migrations._server_facts import MYSQL
from flask_entitydb.migrations.binds import bind_database, bind_engine, bind_metadata, config_bind
from flask_entitydb.state import EntityDBState, get_state

log = logging.getLogger("flask_entitydb")


def run_migrations(**configure_options: Any) -> None:
    """Run the Alembic command in progress for the Flask app; the whole body of ``env.py``.

    Under ``flask db`` (and the Python API) the app is the one the command runs for. When
    Alembic is run directly, for example
    ``FLASK_APP=acme python -m alembic.config -c acme/migrations/alembic.ini upgrade head``,
    the app is loaded like the ``flask`` command does (``FLASK_APP``, ``.flaskenv``) and an
    app context is pushed; ``upgrade``, ``downgrade`` and ``stamp`` then take the
    migration lock too (``-x lock_timeout=SECONDS``, default 60).

    What it sets up: the metadata of every discovered entity, the database of the app's
    engine, type and server default comparison, batch mode on SQLite (with foreign keys
    off while migrating, so rebuilding a table cannot cascade), ``ENTITYDB_EXCLUDE_TABLES``,
    one transaction per revision on MySQL, the lock timeout of
    ``ENTITYDB_MIGRATION_LOCK_TIMEOUT`` on the migrating connection, PostgreSQL enum types through
    alembic-postgresql-enum, a line per applied revision, and an error naming the revision
    that failed. It never configures logging.

    :param configure_options: extra or overriding keyword arguments for Alembic's
        :meth:`~alembic.runtime.environment.EnvironmentContext.configure`, for example
        ``user_module_prefix="acme.types."``; ``include_name``, ``include_object`` and
        ``on_version_apply`` are combined with flask-entitydb's rather than replacing them.
    """
    config = context.config
    run = run_of(config)
    if run is not None:
        _migrate(config, run.app, configure_options)
        return
    # Alembic was run directly, or alembic.command was called without our API: report
    # expected failures the way Alembic does (one "FAILED:" line), not as a traceback.
    try:
        with reported_here():
            _run_for_alembic(config, configure_options)
    except click.ClickException as error:  # EntityDBError, flask's NoAppException
        raise CommandError(error.format_message()) from error


def _run_for_alembic(config: Config, configure_options: dict[str, Any]) -> None:
    if has_app_context():
        _migrate(config, current_app._get_current_object(), configure_options)  # type: ignore[attr-defined]
    else:
        app = _load_app()
        with app.app_context():
            _migrate(config, app, configure_options)


_loading_for_alembic: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "flask_entitydb_loading_for_alembic", default=False
)


def loading_app_for_alembic() -> bool:
    """Whether ``run_migrations()`` is loading the app for Alembic run directly: an app
    that migrates at start-up then skips that migration, since the Alembic command in
    progress is the migration (a second run inside it would end Alembic's own)."""
    return _loading_for_alembic.get()


def _load_app() -> Flask:
    from flask.cli import ScriptInfo, load_dotenv

    load_dotenv()
    info = ScriptInfo(app_import_path=os.environ.get("FLASK_APP"), set_debug_flag=False)
    token = _loading_for_alembic.set(True)
    try:
        return info.load_app()
    finally:
        _loading_for_alembic.reset(token)


def _migrate(config: Config, app: Flask, options: dict[str, Any]) -> None:
    state = get_state(app)
    settings = state.settings
    key = config_bind(config)
    database = bind_database(state, key)
    backend = database.url.get_backend_name()
    options = dict(options)
    theirs = as_list(options.pop("on_version_apply", None))
    opts: dict[str, Any] = {
        **hook_options(settings, bind_metadata(state.db.metadata, key), options),
        # batch operations work on SQLite (table rebuilds) and are plain ALTERs elsewhere,
        # so a revision made on one backend runs on the others
        "render_as_batch": True,
        # SQLite DDL is transactional once the driver is made to say BEGIN (see
        # _sqlite_transactions); like MySQL, commit each revision as it succeeds
        "transactional_ddl": True if backend == "sqlite" else None,
        "transaction_per_migration": backend in MYSQL or backend == "sqlite",
    }
    opts.update(options)
    register_renderer()
    register_safe_forms()
    register_online_ddl()
    if backend == "postgresql":
        _enable_postgresql_enums()

    if context.is_offline_mode():
        # only the caller's hooks: no lock to check, and the --sql output stays clean
        _migrate_offline(database, settings, {**opts, "on_version_apply": theirs})
        return
    try:
        _migrate_online(config, state, key, backend, opts, theirs)
    except sa.exc.DBAPIError as error:
        if run_of(config) is not None:
            raise  # the API reports it
        raise database_error(
            error, database.url, database.url_source, database.shown_url
        ) from error


def _migrate_offline(database: DatabaseSettings, settings: Settings, opts: dict[str, Any]) -> None:
    """Write the SQL of the command (``--sql``)."""
    backend = database.url.get_backend_name()
    context.configure(
        url=database.url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **opts
    )
    with context.begin_transaction():
        timeout = lock_timeout_sql(backend, settings.migration_lock_timeout)
        if timeout is not None:  # the script runs with the same lock timeout
            context.execute(timeout[0])
        context.run_migrations()


def _migrate_online(
    config: Config,
    state: EntityDBState,
    key: str | None,
    backend: str,
    opts: dict[str, Any],
    theirs: list[Any],
) -> None:
    """Run the command on the database; a run that changes it (``upgrade``, ``downgrade``,
    ``stamp``) goes through :func:`._applying.apply`, with the lock and the journal."""
    settings = state.settings
    hooks = VersionHooks(theirs)
    opts = {**opts, "on_version_apply": [hooks]}
    with (
        _enum_plugin_quiet(backend),
        closed_after(_engine_of(config, state, key)) as connection,
        discarded_on_failure(connection),
        _sqlite_foreign_keys_off(connection),
        _sqlite_transactions(connection),
        migration_lock_timeout(connection, settings.migration_lock_timeout),
    ):
        context.configure(connection=connection, **opts)
        migration = context.get_context()
        if changes_database(migration):
            # imported here: the lock, the journal and the progress hooks are the bulk of
            # the package's migration code, and commands that only read never need them
            from flask_entitydb.migrations._applying import apply

            apply(config, state, connection, migration, hooks, opts)
            return
        try:
            with context.begin_transaction():
                context.run_migrations()
        except Exception as error:
            from flask_entitydb.migrations._applying import raise_failure

            raise_failure(error, config, opts, migration)


def _engine_of(config: Config, state: EntityDBState, key: str | None) -> sa.Engine:
    """The engine of the bind, or the one the API's run names (a scratch database)."""
    run = run_of(config)
    if run is not None and run.engine is not None:
        return run.engine
    return bind_engine(state, key)


# -- what each backend needs while migrating -----------------------------------------------


_warned_no_enum_plugin = False


def _enable_postgresql_enums() -> None:
    global _warned_no_enum_plugin
    try:
        enable_postgresql_enums()
    except ImportError:
        if not _warned_no_enum_plugin:
            _warned_no_enum_plugin = True
            log.warning(
                "alembic-postgresql-enum is not installed, so changed PostgreSQL enum types"
                " are not detected; install it with: pip install flask-entitydb[postgresql]"
            )


class _SkipNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "only supports postgresql" not in record.getMessage()


@contextlib.contextmanager
def _enum_plugin_quiet(backend: str) -> Iterator[None]:
    """Once imported (by a PostgreSQL run earlier in the process), alembic-postgresql-enum
    logs a warning on every autogenerate for other databases; it has nothing to do there,
    so that notice is dropped while migrating them."""
    if backend == "postgresql" or "alembic_postgresql_enum" not in sys.modules:
        yield
        return
    with filtered("alembic.alembic_postgresql_enum.compare_dispatch", _SkipNotice()):
        yield


@contextlib.contextmanager
def _sqlite_foreign_keys_off(connection: sa.Connection) -> Iterator[None]:
    """On SQLite, turn foreign key enforcement off while migrating: batch mode rebuilds a
    table by dropping it, and with enforcement on, dropping a parent table deletes (or
    refuses to delete) the rows that refer to it."""
    if connection.dialect.name != "sqlite":
        yield
        return
    with session_setting(connection, "PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys=ON"):
        yield


@contextlib.contextmanager
def _sqlite_transactions(connection: sa.Connection) -> Iterator[None]:
    """On SQLite, start every transaction with an explicit ``BEGIN``: Python's sqlite3
    driver only opens one before data changes, so a revision's ``CREATE TABLE`` or
    ``ALTER TABLE`` would be committed at once and survive the revision's failure."""
    if connection.dialect.name != "sqlite":
        yield
        return

    def begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    if connection.in_transaction():
        connection.commit()
    sa.event.listen(connection, "begin", begin)
    try:
        yield
    finally:
        sa.event.remove(connection, "begin", begin)
