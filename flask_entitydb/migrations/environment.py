"""What the generated ``env.py`` runs: :func:`run_migrations`.

``env.py`` is a file in the user's repository, so it calls this one public function and
nothing else; everything it does can change in a release without anyone editing their
``env.py``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click
import sqlalchemy as sa
from alembic import context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from flask import Flask, current_app, has_app_context

from flask_entitydb._settings.model import Settings
from flask_entitydb.errors import EntityDBError, MigrationError
from flask_entitydb.migrations._autogenerate.compare import (
    compare_server_default,
    compare_type,
    enable_postgresql_enums,
)
from flask_entitydb.migrations._autogenerate.online_blocks import online_algorithms
from flask_entitydb.migrations._autogenerate.online_blocks import (
    register_renderer as register_online_ddl,
)
from flask_entitydb.migrations._autogenerate.portable import (
    portable_types,
    register_renderer,
    render_item,
)
from flask_entitydb.migrations._autogenerate.safe_forms import concurrent_indexes
from flask_entitydb.migrations._autogenerate.safe_forms import (
    register_renderer as register_safe_forms,
)
from flask_entitydb.migrations._config import (
    ATTR_APP,
    ATTR_LOCK_TIMEOUT,
    ATTR_LOCKED,
    ATTR_ON_APPLY,
    ATTR_ON_LOCK,
)
from flask_entitydb.migrations._failures import (
    database_error,
    one_line,
    reported_here,
    version_table_state,
)
from flask_entitydb.migrations._locks.discard import discarded_on_failure
from flask_entitydb.migrations._locks.lease import LEASE_TABLE
from flask_entitydb.migrations._locks.locking import LockNotice, migration_lock
from flask_entitydb.migrations._locks.runlock import RunLock, run_lock
from flask_entitydb.migrations._locks.timeouts import (
    is_lock_timeout,
    lock_timeout_sql,
    migration_lock_timeout,
    session_setting,
)
from flask_entitydb.migrations._server_facts import NOT_SUPPORTED, error_code
from flask_entitydb.migrations.binds import bind_database, bind_engine, bind_metadata, config_bind
from flask_entitydb.migrations.results import Action, AppliedRevision
from flask_entitydb.state import get_state

log = logging.getLogger("flask_entitydb")

DEFAULT_LOCK_TIMEOUT = 60.0
"""Seconds ``upgrade``, ``downgrade`` and ``stamp`` wait for the migration lock."""

VERSION_TABLE = "alembic_version"

_MYSQL = frozenset({"mysql", "mariadb"})


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
    app = config.attributes.get(ATTR_APP)
    if isinstance(app, Flask):
        _run(config, app, configure_options)
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
        _run(config, current_app._get_current_object(), configure_options)  # type: ignore[attr-defined]
    else:
        app = _load_app()
        with app.app_context():
            _run(config, app, configure_options)


def _load_app() -> Flask:
    from flask.cli import ScriptInfo, load_dotenv

    load_dotenv()
    info = ScriptInfo(app_import_path=os.environ.get("FLASK_APP"), set_debug_flag=False)
    return info.load_app()


def _run(config: Config, app: Flask, options: dict[str, Any]) -> None:
    state = get_state(app)
    settings = state.settings
    key = config_bind(config)
    database = bind_database(state, key)
    metadata = bind_metadata(state.db.metadata, key)
    backend = database.url.get_backend_name()
    options = dict(options)
    progress = _Progress(config)
    checkpoint = _Checkpoint()
    opts: dict[str, Any] = {
        "target_metadata": metadata,
        "compare_type": compare_type if settings.compare_type else False,
        "compare_server_default": (
            compare_server_default if settings.compare_server_default else False
        ),
        # batch operations work on SQLite (table rebuilds) and are plain ALTERs elsewhere,
        # so a revision made on one backend runs on the others
        "render_as_batch": True,
        # SQLite DDL is transactional once the driver is made to say BEGIN (see
        # _sqlite_transactions); like MySQL, commit each revision as it succeeds
        "transactional_ddl": True if backend == "sqlite" else None,
        "transaction_per_migration": backend in _MYSQL or backend == "sqlite",
        "include_name": _combine(
            _include_name(settings.exclude_tables, options.get("version_table", VERSION_TABLE)),
            options.pop("include_name", None),
        ),
        "include_object": _combine(
            _include_object(settings.exclude_tables), options.pop("include_object", None)
        ),
        "on_version_apply": [
            checkpoint,
            progress,
            *_as_list(options.pop("on_version_apply", None)),
        ],
        "render_item": _first_rendering(render_item, options.pop("render_item", None)),
        "process_revision_directives": _chain(
            portable_types(metadata),
            concurrent_indexes,
            online_algorithms,
            options.pop("process_revision_directives", None),
        ),
    }
    opts.update(options)
    register_renderer()
    register_safe_forms()
    register_online_ddl()
    if backend == "postgresql":
        _enable_postgresql_enums()

    if context.is_offline_mode():
        opts["on_version_apply"] = opts["on_version_apply"][2:]  # keep --sql output clean
        context.configure(
            url=database.url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **opts
        )
        with context.begin_transaction():
            timeout = lock_timeout_sql(backend, settings.migration_lock_timeout)
            if timeout is not None:  # the script runs with the same lock timeout
                context.execute(timeout[0])
            context.run_migrations()
        return

    engine = bind_engine(state, key)
    try:
        with (
            _enum_plugin_quiet(backend),
            engine.connect() as connection,
            discarded_on_failure(connection),
            _sqlite_foreign_keys_off(connection),
            _sqlite_transactions(connection),
            migration_lock_timeout(connection, settings.migration_lock_timeout),
        ):
            context.configure(connection=connection, **opts)
            migration = context.get_context()
            with _lock_if_needed(config, connection, migration, settings) as lock:
                checkpoint.lock = lock
                progress.start()
                try:
                    with context.begin_transaction():
                        if lock is not None:
                            lock.begin_transaction(lambda: set(migration.get_current_heads()))
                        context.run_migrations()
                except EntityDBError:
                    raise
                except Exception as error:
                    failure = _revision_failure(error, config, progress, opts)
                    if failure is None:
                        raise
                    raise failure from error
    except sa.exc.DBAPIError as error:
        if config.attributes.get(ATTR_APP) is not None:
            raise  # the API reports it
        raise database_error(error, database.url, database.url_source) from error


# -- pieces --------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if callable(value):
        return [value]
    return list(value)


def _chain(*hooks: Callable[..., None] | None) -> Callable[..., None]:
    """One ``process_revision_directives`` hook running ``hooks`` in order."""
    present = [hook for hook in hooks if hook is not None]

    def run(context: MigrationContext, revision: Any, directives: list[Any]) -> None:
        for hook in present:
            hook(context, revision, directives)

    return run


def _first_rendering(
    ours: Callable[..., Any], theirs: Callable[..., Any] | None
) -> Callable[..., Any]:
    """A ``render_item`` hook: the caller's rendering when it has one, else ours."""
    if theirs is None:
        return ours

    def render(type_: str, obj: Any, autogen_context: Any) -> Any:
        rendered = theirs(type_, obj, autogen_context)
        return ours(type_, obj, autogen_context) if rendered is False else rendered

    return render


def _combine(ours: Callable[..., bool], theirs: Callable[..., bool] | None) -> Callable[..., bool]:
    if theirs is None:
        return ours

    def both(*args: Any) -> bool:
        return ours(*args) and theirs(*args)

    return both


def _excluded(name: str | None, schema: str | None, patterns: Sequence[str]) -> bool:
    if name is None:
        return False
    names = [name] if schema is None else [name, f"{schema}.{name}"]
    return any(fnmatch.fnmatchcase(n, pattern) for n in names for pattern in patterns)


def _include_name(patterns: Sequence[str], version_table: str) -> Callable[..., bool]:
    """Alembic ``include_name`` hook: leave excluded tables and the version table
    unreflected."""

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ != "table":
            return True
        if name in (version_table, LEASE_TABLE):
            return False
        return not _excluded(name, parent_names.get("schema_name"), patterns)

    return include_name


def _include_object(patterns: Sequence[str]) -> Callable[..., bool]:
    """Alembic ``include_object`` hook: leave excluded tables of the metadata alone."""

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ != "table":
            return True
        return not _excluded(name, getattr(obj, "schema", None), patterns)

    return include_object


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
    logger = logging.getLogger("alembic.alembic_postgresql_enum.compare_dispatch")
    notice = _SkipNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def _needs_lock(config: Config, migration: MigrationContext) -> bool:
    """Whether this run changes the database (``upgrade``, ``downgrade``, ``stamp``, from
    ``flask db``, the Python API, Alembic's ``command`` module or its command line) and
    its caller does not hold the migration lock already."""
    if config.attributes.get(ATTR_LOCKED):
        return False
    return "destination_rev" in migration.opts or bool(migration.opts.get("purge"))


def _lock_timeout(config: Config) -> float:
    given = config.attributes.get(ATTR_LOCK_TIMEOUT)
    if given is not None:
        return float(given)
    value = context.get_x_argument(as_dictionary=True).get("lock_timeout")
    if value is None:
        return DEFAULT_LOCK_TIMEOUT
    try:
        return float(value)
    except ValueError:
        raise MigrationError(
            f"'-x lock_timeout={value}' is not a number of seconds; use for example"
            " '-x lock_timeout=60'."
        ) from None


def _lock_notices(config: Config) -> Callable[[LockNotice], None]:
    """Where lock notices go: the API's callback, else Alembic's output (run directly),
    else the log."""
    callback = config.attributes.get(ATTR_ON_LOCK)
    if callback is not None:
        return callback  # type: ignore[no-any-return]
    if ATTR_APP not in config.attributes:

        def show(notice: LockNotice) -> None:
            if notice.kind == "waiting":
                config.print_stdout(notice.message)

        return show

    def record(notice: LockNotice) -> None:
        log.info("%s", notice.message)

    return record


@contextlib.contextmanager
def hold_migration_lock(engine: sa.Engine, timeout: float) -> Iterator[None]:
    """Hold the database-level migration lock on a connection of its own while the
    ``with`` block runs (for callers that must keep other runs out of a block of their
    own; migration runs lock themselves, on their migrating connection).

    :raises LockTimeoutError: another process held it for longer than ``timeout``.
    """
    with (
        engine.connect() as connection,
        discarded_on_failure(connection),
        migration_lock(connection, timeout=timeout),
    ):
        yield


@contextlib.contextmanager
def _lock_if_needed(
    config: Config, connection: sa.Connection, migration: MigrationContext, settings: Settings
) -> Iterator[RunLock | None]:
    if not _needs_lock(config, migration):
        yield None
        return
    with run_lock(
        connection,
        timeout=_lock_timeout(config),
        mode=settings.migration_lock,
        lease_seconds=settings.migration_lease_seconds,
        notify=_lock_notices(config),
    ) as lock:
        yield lock


class _Checkpoint:
    """``on_version_apply`` hook: verify the lock is still held after each revision,
    before its version-table update is committed."""

    def __init__(self) -> None:
        self.lock: RunLock | None = None

    def __call__(self, **kwargs: Any) -> None:
        if self.lock is not None:
            self.lock.check(**kwargs)


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


class _Progress:
    """``on_version_apply`` hook: one :class:`AppliedRevision` per step, with its time."""

    def __init__(self, config: Config) -> None:
        self._config = config
        callback = config.attributes.get(ATTR_ON_APPLY)
        self._callback: Callable[[AppliedRevision], None] | None = callback
        self.applied: list[AppliedRevision] = []
        self._started = time.perf_counter()

    def start(self) -> None:
        self._started = time.perf_counter()

    def __call__(
        self, *, ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: Any
    ) -> None:
        now = time.perf_counter()
        elapsed, self._started = now - self._started, now
        action: Action
        if step.is_stamp:
            action = "stamp"
            revision = ", ".join(sorted(heads)) or "base"
            script = step.revision_map.get_revision(next(iter(heads))) if len(heads) == 1 else None
        else:
            action = "upgrade" if step.is_upgrade else "downgrade"
            revision = step.up_revision_id or "base"
            script = step.up_revision
        message = script.doc if isinstance(script, Script) else ""
        item = AppliedRevision(revision=revision, message=message, action=action, elapsed=elapsed)
        self.applied.append(item)
        if self._callback is not None:
            self._callback(item)
        elif ATTR_APP not in self._config.attributes:
            self._config.print_stdout(item.describe())


def _revision_in_traceback(error: BaseException, config: Config) -> Script | None:
    """The revision whose file the error was raised in (its innermost frame wins)."""
    paths: list[str] = []
    traceback = error.__traceback__
    while traceback is not None:
        paths.append(os.path.realpath(traceback.tb_frame.f_code.co_filename))
        traceback = traceback.tb_next
    if not paths:
        return None
    try:
        scripts = {
            os.path.realpath(script.path): script
            for script in ScriptDirectory.from_config(config).walk_revisions()
        }
    except Exception:  # the folder itself is broken; report the original error
        return None
    for path in reversed(paths):
        if path in scripts:
            return scripts[path]
    return None


def _revision_failure(
    error: Exception, config: Config, progress: _Progress, opts: dict[str, Any]
) -> MigrationError | None:
    """A :class:`MigrationError` naming the revision that failed and what state the
    database is in, or ``None`` when the error did not come from a revision."""
    script = _revision_in_traceback(error, config)
    if script is None:
        return None
    name = f"'{script.revision}'" + (f" ({script.doc})" if script.doc else "")
    # what the version table holds now, read from the database: going down, the last
    # step that succeeded is not the revision the database is at
    where = version_table_state(context.get_context())
    fix = "fix the revision"
    if is_lock_timeout(error):
        fix = (
            "another transaction held a lock the revision needs for longer than"
            " 'ENTITYDB_MIGRATION_LOCK_TIMEOUT' allows: wait until it has ended (or raise"
            " the timeout)"
        )
    what = one_line(error)
    if error_code(error) in NOT_SUPPORTED:
        what = (
            "the server would have to copy the table, blocking writes, which the revision's"
            f" 'online_ddl' block forbids: {what}"
        )
        fix = (
            "make the change with an online schema change tool (pt-online-schema-change,"
            " gh-ost), or remove the 'online_ddl' block to let the server copy the table"
            " (and mark it '# entitydb: allow mysql-table-copy'),"
        )
    if context.is_transactional_ddl():
        if opts.get("transaction_per_migration"):
            state = f"it was rolled back and {where}; {fix}"
        else:
            state = f"the whole run was rolled back, so the database is as it was before; {fix}"
    else:
        state = (
            f"{where}, and the database may hold a partial change from '{script.revision}'"
            f" (this database commits each DDL statement at once): check the database,"
            f" {fix}"
        )
    return MigrationError(f"Revision {name} failed: {what}; {state} and run the command again.")
