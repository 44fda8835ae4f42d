"""The part of ``run_migrations()`` for the runs that change the database (``upgrade``,
``downgrade``, ``stamp``): the migration lock, the journal, the progress hooks, and the
error naming the revision that failed.

``env.py`` imports this module only for such runs (and for the errors of the others): the
commands that only read (``current``, ``check``, ``migrate``) never load the lock and
journal code.
"""

from __future__ import annotations

import contextlib
from typing import Any, NoReturn

import sqlalchemy as sa
from alembic import context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from flask_entitydb.errors import EntityDBError, MigrationError
from flask_entitydb.migrations._failures import one_line, version_table_state
from flask_entitydb.migrations._journal.journal import Journal
from flask_entitydb.migrations._journal.run import journaled
from flask_entitydb.migrations._journal.verdicts import Stopped
from flask_entitydb.migrations._journal.watch import JournalHook
from flask_entitydb.migrations._locks.hold import held_lock
from flask_entitydb.migrations._locks.runlock import RunLock
from flask_entitydb.migrations._progress import Checkpoint, Progress, revision_failure
from flask_entitydb.migrations._run import DEFAULT_LOCK_TIMEOUT, VersionHooks
from flask_entitydb.state import EntityDBState


def apply(
    config: Config,
    state: EntityDBState,
    connection: sa.Connection,
    migration: MigrationContext,
    hooks: VersionHooks,
    opts: dict[str, Any],
) -> None:
    """Run the configured ``migration`` holding the migration lock, with the journal and
    the progress hooks in ``hooks``."""
    progress = Progress(config)
    checkpoint = Checkpoint()
    journal_hook = JournalHook()
    # the journal's update first: on MySQL/MariaDB it proves the lock held (the checkpoint
    # then asks nothing); a lost lock still raises before the transaction commits
    checkpoint.verified = lambda: journal_hook.lock_verified
    hooks.ours = [journal_hook, checkpoint, progress]
    progress.watch(migration)
    with (
        held_lock(config, connection, state.settings, default_timeout=DEFAULT_LOCK_TIMEOUT) as lock,
        journaled(
            connection.engine,
            state.settings.migration_journal_table,
            galera=lock.galera,
            script=context.script,
            connection=connection,
            migration=migration,
        ) as journal,
    ):
        checkpoint.lock = lock
        journal_hook.journal = journal
        if journal is not None:
            journal.fence = lock.fence
            journal.lock_held = lock.held_condition()
        progress.start()
        try:
            with context.begin_transaction():
                context.run_migrations()
        except Stopped as stop:
            where = version_table_state(migration)
            _after_rollback(journal, "the run stopped before a revision")
            raise MigrationError(stop.line(where)) from None
        except Exception as error:
            raise_failure(error, config, opts, migration, lock=lock, journal=journal)


def raise_failure(
    error: Exception,
    config: Config,
    opts: dict[str, Any],
    migration: MigrationContext,
    *,
    lock: RunLock | None = None,
    journal: Journal | None = None,
) -> NoReturn:
    """Roll the failed run back, tell the journal, and raise what the user should read:
    the error naming the revision that failed (what state the database is in, what to
    do), else ``error`` itself."""
    if isinstance(error, EntityDBError):
        _after_rollback(journal, str(error), migration)
        raise error
    cause = _rollback_failure_cause(error)
    if cause is not None:
        _after_rollback(journal, str(cause), migration)
        raise cause from None
    lost = lock.lost() if lock is not None else None
    committed = journal.failure_committed_part if journal is not None else None
    failure = revision_failure(
        error,
        config,
        opts,
        committed_part=committed,
        run_committed=journal is not None and journal.committed_in_run,
        lost_lock=lost,
    )
    _after_rollback(journal, one_line(error), migration)
    if failure is None:
        raise error
    raise failure from error


def _rollback_failure_cause(error: Exception) -> EntityDBError | None:
    """The error a run stopped with, when rolling it back then failed too (a Galera node
    answers the rollback of a transaction it aborted for another node's schema change
    with a deadlock error): the stop is what the user needs to read."""
    if not isinstance(error, sa.exc.DBAPIError) or error.statement is not None:
        return None
    cause = error.__context__  # the driver's error; the stop is the one before it
    while cause is not None and not isinstance(cause, EntityDBError):
        cause = cause.__context__
    return cause


def _after_rollback(
    journal: Journal | None, why: str, migration: MigrationContext | None = None
) -> None:
    """The run failed: roll it back (if Alembic has not), then tell the journal."""
    if migration is not None and migration.connection is not None:
        connection = migration.connection
        if not connection.closed and not connection.invalidated and connection.in_transaction():
            with contextlib.suppress(sa.exc.DBAPIError):
                connection.rollback()
    if journal is not None:
        journal.after_rollback(why)
