"""Changing the database: ``upgrade``, ``downgrade`` and ``stamp``, each holding the
migration lock (taken by ``run_migrations()`` in ``env.py``), and their ``--sql`` forms
(``upgrade_sql``, ``downgrade_sql``, ``stamp_sql``), which need no database.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from typing import Any

from alembic import command
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from flask import Flask

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._config import EntityDBConfig, make_config
from flask_entitydb.migrations._context import (
    PathArg,
    XArg,
    current_flask_app,
    database_heads,
    printed_sql,
    revisions_reused,
    running,
    x_arguments,
)
from flask_entitydb.migrations._locks.locking import Notify
from flask_entitydb.migrations._run import DEFAULT_LOCK_TIMEOUT, OnApply, OnStart
from flask_entitydb.migrations._scaffold import envfile
from flask_entitydb.migrations._squash.start import start_new_database
from flask_entitydb.migrations.environment import loading_app_for_alembic
from flask_entitydb.migrations.results import AppliedRevision

log = logging.getLogger("flask_entitydb")


def _migrate_database(
    run: Callable[[EntityDBConfig], None],
    *,
    lock_timeout: float,
    on_apply: OnApply | None,
    on_lock: Notify | None,
    x_args: Sequence[str],
    directory: PathArg,
    app: Flask | None,
    on_start: OnStart | None = None,
) -> list[AppliedRevision]:
    """Run a command that changes the database; the revisions it applied, in order."""
    app = current_flask_app(app)
    applied: list[AppliedRevision] = []
    if loading_app_for_alembic():
        log.warning(
            "Skipped migrating at start-up while Alembic loads the app for its own command"
            " (that command is the migration)."
        )
        return applied

    def record(item: AppliedRevision) -> None:
        applied.append(item)
        if on_apply is not None:
            on_apply(item)

    with running(app):
        try:
            config = make_config(
                app,
                directory,
                x_args=x_args,
                on_apply=record,
                on_start=on_start,
                lock_timeout=lock_timeout,
                on_lock=on_lock,
            )
        except MigrationError as error:
            if not envfile.initialising_folder():
                raise
            # an app migrating at start-up, loaded by 'flask db init' (--replace-env):
            # the folder is what that command creates or fixes, so migrate afterwards
            log.warning("Skipped migrating at start-up while 'flask db init' runs: %s", error)
            return applied
        try:
            run(config)  # env.py's run_migrations() takes the migration lock
        except (CommandError, RevisionError) as error:
            if "Can't locate revision" in str(error):
                database_heads(config)  # says so when the database's revision is unknown
            raise
    return applied


def reused(
    alembic_command: Callable[..., object], *args: Any, **kwargs: Any
) -> Callable[[EntityDBConfig], None]:
    """A run of ``alembic_command(config, *args, **kwargs)`` on the revisions
    ``make_config`` loaded (not loaded again)."""

    def run(config: EntityDBConfig) -> None:
        with revisions_reused(config):
            alembic_command(config, *args, **kwargs)

    return run


def _sql(
    run: Callable[[EntityDBConfig], None],
    *,
    x_args: Sequence[str],
    directory: PathArg,
    app: Flask | None,
) -> str:
    """Run a command in ``--sql`` mode; the SQL it wrote."""
    app = current_flask_app(app)
    buffer = io.StringIO()
    with running(app):
        run(make_config(app, directory, x_args=x_args, output_buffer=buffer))
    return buffer.getvalue()


def upgrade(
    directory: PathArg = None,
    revision: str = "head",
    sql: bool = False,
    tag: str | None = None,
    x_arg: XArg = None,
    *,
    x_args: Sequence[str] = (),
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_apply: OnApply | None = None,
    on_start: OnStart | None = None,
    on_lock: Notify | None = None,
    squashed: bool = True,
    app: Flask | None = None,
) -> list[AppliedRevision]:
    """Upgrade the database to ``revision`` (``flask db upgrade``).

    The arguments are Flask-Migrate's ``upgrade(directory, revision, sql, tag, x_arg)``,
    positional or by keyword; the migrations folder comes first, as there.

    The migration lock is held for the whole run, so concurrent upgrades (replicas
    starting at once) apply each revision once; the others wait up to ``lock_timeout``
    seconds, then find nothing to do.

    :param directory: the migrations folder (default: the app's; a relative path is
        relative to the working directory, as in Flask-Migrate).
    :param sql: print the SQL instead of running it, as Flask-Migrate does
        (:func:`upgrade_sql` returns it).
    :param x_arg: ``-x`` values for ``env.py`` (Flask-Migrate's name; ``x_args`` too).
    :param on_apply: called with each revision as soon as it is applied.
    :param on_start: called with each revision as it starts, with its place in the run
        (a :class:`~flask_entitydb.migrations.results.StartedRevision`).
    :param squashed: a database with no revision yet starts from the squashed revision
        (``flask db squash``) standing for the most revisions on the way, if any; false:
        it upgrades through every revision.
    :param on_lock: called with a :class:`~flask_entitydb.migrations._locks.locking.LockNotice`
        when waiting for the lock starts and when it is taken (default: logged).
    :returns: the revisions applied, in order (empty: already there, or ``sql``).
    :raises LockTimeoutError: the lock stayed taken for ``lock_timeout`` seconds.
    :raises MigrationError: a revision failed (the message names it and the state the
        database is left in), unknown revision, no migrations folder, database
        unreachable.
    """
    x_values = x_arguments(x_arg, x_args)
    if sql:
        return printed_sql(
            upgrade_sql(revision, tag=tag, x_args=x_values, directory=directory, app=app)
        )

    def run(config: EntityDBConfig) -> None:
        if squashed:
            start_new_database(config, revision, tag)
        with revisions_reused(config):
            command.upgrade(config, revision, tag=tag)

    return _migrate_database(
        run,
        lock_timeout=lock_timeout,
        on_apply=on_apply,
        on_start=on_start,
        on_lock=on_lock,
        x_args=x_values,
        directory=directory,
        app=app,
    )


def upgrade_sql(
    revision: str = "head",
    *,
    tag: str | None = None,
    x_args: Sequence[str] = (),
    directory: PathArg = None,
    app: Flask | None = None,
) -> str:
    """The SQL an upgrade to ``revision`` would run, without a database (``flask db
    upgrade --sql``); ``revision`` may be a ``from:to`` range."""
    return _sql(
        reused(command.upgrade, revision, sql=True, tag=tag),
        x_args=x_args,
        directory=directory,
        app=app,
    )


def downgrade(
    directory: PathArg = None,
    revision: str = "-1",
    sql: bool = False,
    tag: str | None = None,
    x_arg: XArg = None,
    *,
    x_args: Sequence[str] = (),
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_apply: OnApply | None = None,
    on_start: OnStart | None = None,
    on_lock: Notify | None = None,
    app: Flask | None = None,
) -> list[AppliedRevision]:
    """Downgrade the database to ``revision`` (default: one revision back; ``"base"``
    reverts every revision) (``flask db downgrade``). Holds the migration lock like
    :func:`upgrade`, and takes Flask-Migrate's arguments like it; with ``sql``, the
    default ``-1`` means ``head:-1``, as in Flask-Migrate.

    :returns: the revisions reverted, in order.
    """
    x_values = x_arguments(x_arg, x_args)
    if sql:
        span = "head:-1" if revision == "-1" else revision
        return printed_sql(
            downgrade_sql(span, tag=tag, x_args=x_values, directory=directory, app=app)
        )
    return _migrate_database(
        reused(command.downgrade, revision, tag=tag),
        lock_timeout=lock_timeout,
        on_apply=on_apply,
        on_start=on_start,
        on_lock=on_lock,
        x_args=x_values,
        directory=directory,
        app=app,
    )


def downgrade_sql(
    revision: str,
    *,
    tag: str | None = None,
    x_args: Sequence[str] = (),
    directory: PathArg = None,
    app: Flask | None = None,
) -> str:
    """The SQL of a downgrade, without a database; ``revision`` is a ``from:to`` range
    such as ``"head:base"`` (``flask db downgrade --sql``)."""
    if ":" not in revision:
        raise MigrationError(
            f"'downgrade --sql' needs a range such as 'head:base', got '{revision}'; without"
            " a database the starting revision must be given."
        )
    return _sql(
        reused(command.downgrade, revision, sql=True, tag=tag),
        x_args=x_args,
        directory=directory,
        app=app,
    )


def stamp(
    directory: PathArg = None,
    revision: str | Sequence[str] = "head",
    sql: bool = False,
    tag: str | None = None,
    purge: bool = False,
    *,
    revisions: str | Sequence[str] | None = None,
    x_args: Sequence[str] = (),
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_apply: OnApply | None = None,
    on_lock: Notify | None = None,
    app: Flask | None = None,
) -> list[AppliedRevision]:
    """Set the database's revision without running any migration (``flask db stamp``);
    Flask-Migrate's ``stamp(directory, revision, sql, tag, purge)``.

    :param revision: the revision, or several (``revisions=`` is the same).
    :param sql: print the SQL instead of running it (:func:`stamp_sql` returns it).
    :param purge: empty the version table first (for a table naming unknown revisions).
    """
    if revisions is not None:
        if revision != "head":
            raise TypeError("stamp() takes 'revision' or 'revisions', not both")
        revision = revisions
    if sql:
        return printed_sql(
            stamp_sql(revision, tag=tag, x_args=x_args, directory=directory, app=app)
        )
    targets = [revision] if isinstance(revision, str) else list(revision)
    return _migrate_database(
        reused(command.stamp, targets, tag=tag, purge=purge),
        lock_timeout=lock_timeout,
        on_apply=on_apply,
        on_lock=on_lock,
        x_args=x_args,
        directory=directory,
        app=app,
    )


def stamp_sql(
    revisions: str | Sequence[str] = "head",
    *,
    tag: str | None = None,
    x_args: Sequence[str] = (),
    directory: PathArg = None,
    app: Flask | None = None,
) -> str:
    """The SQL of a stamp, without a database (``flask db stamp --sql``)."""
    targets = [revisions] if isinstance(revisions, str) else list(revisions)
    return _sql(
        reused(command.stamp, targets, sql=True, tag=tag),
        x_args=x_args,
        directory=directory,
        app=app,
    )


__all__ = [
    "OnApply",
    "OnStart",
    "downgrade",
    "downgrade_sql",
    "stamp",
    "stamp_sql",
    "upgrade",
    "upgrade_sql",
]
