"""The run object: what the API tells ``run_migrations()`` in ``env.py`` about one command.

The API puts one :class:`MigrationRun` into the Alembic config's
:attr:`~alembic.config.Config.attributes`; ``env.py`` reads it back with :func:`run_of`.
No run object means Alembic was run directly (or ``alembic.command`` was called without
the API): ``run_migrations()`` then loads the app itself and reports like Alembic does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from flask import Flask

from flask_entitydb.migrations.results import AppliedRevision, StartedRevision

if TYPE_CHECKING:  # the lock code loads only for the runs that take it
    from flask_entitydb.migrations._locks.locking import Notify

OnApply = Callable[[AppliedRevision], None]
"""Callback receiving each revision as soon as it is applied, reverted or stamped."""

OnStart = Callable[[StartedRevision], None]
"""Callback receiving each revision as it starts to run (upgrade, downgrade)."""

DEFAULT_LOCK_TIMEOUT = 60.0
"""Seconds ``upgrade``, ``downgrade`` and ``stamp`` wait for the migration lock."""

RUN_KEY = "flask_entitydb.run"
"""The key of :attr:`Config.attributes <alembic.config.Config.attributes>` holding the
:class:`MigrationRun`."""


@dataclass(frozen=True)
class MigrationRun:
    """One command of the API, as ``run_migrations()`` needs to know it."""

    app: Flask
    """The Flask app to migrate."""
    bind: str | None = None
    """The bind the command runs for (``None``: the default database)."""
    on_apply: OnApply | None = None
    """Called with each revision as soon as it is applied, reverted or stamped."""
    on_start: OnStart | None = None
    """Called with each revision as it starts to run."""
    lock_timeout: float | None = None
    """Seconds ``run_migrations()`` waits for the migration lock (``None``: ``-x
    lock_timeout``, else the default)."""
    on_lock: Notify | None = None
    """Called with each :class:`~flask_entitydb.migrations._locks.locking.LockNotice`
    (``None``: logged)."""
    engine: sa.Engine | None = None
    """The database to run on instead of the bind's (``flask db squash`` builds its
    scratch databases through ``env.py`` with it)."""


def run_of(config: Config) -> MigrationRun | None:
    """The API's run object of ``config``; ``None`` when Alembic was run without the API."""
    run = config.attributes.get(RUN_KEY)
    return run if isinstance(run, MigrationRun) else None


def changes_database(migration: MigrationContext) -> bool:
    """Whether the configured run changes the database (``upgrade``, ``downgrade``,
    ``stamp``, from ``flask db``, the Python API, Alembic's ``command`` module or its
    command line): those hold the migration lock and write the journal."""
    return "destination_rev" in migration.opts or bool(migration.opts.get("purge"))


class VersionHooks:
    """A run's ``on_version_apply`` hook: flask-entitydb's own hooks (the journal, the
    lock check, the progress), set once the run's context says it changes the database,
    then the caller's."""

    def __init__(self, theirs: list[Any]) -> None:
        self.ours: list[Any] = []
        self.theirs = theirs

    def __call__(self, **kwargs: Any) -> None:
        for hook in (*self.ours, *self.theirs):
            hook(**kwargs)
