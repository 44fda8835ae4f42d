"""How a migration run holds the migration lock: taken by ``run_migrations()``
on its migrating connection for the runs that change the database, with the timeout and
the notices the caller asked for.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import context
from alembic.config import Config

from flask_entitydb._settings.model import Settings
from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._locks.locking import LockNotice, Notify
from flask_entitydb.migrations._locks.runlock import RunLock, run_lock
from flask_entitydb.migrations._run import run_of

log = logging.getLogger("flask_entitydb")


@contextlib.contextmanager
def held_lock(
    config: Config,
    connection: sa.Connection,
    settings: Settings,
    *,
    default_timeout: float,
) -> Iterator[RunLock]:
    """Hold the migration lock on ``connection`` while the block runs (a run that changes
    the database).

    :param default_timeout: seconds to wait when neither the API nor ``-x lock_timeout``
        says.
    """
    with run_lock(
        connection,
        timeout=_lock_timeout(config, default_timeout),
        mode=settings.migration_lock,
        lease_seconds=settings.migration_lease_seconds,
        notify=_lock_notices(config),
    ) as lock:
        yield lock


def _lock_timeout(config: Config, default: float) -> float:
    run = run_of(config)
    if run is not None and run.lock_timeout is not None:
        return float(run.lock_timeout)
    value = context.get_x_argument(as_dictionary=True).get("lock_timeout")
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise MigrationError(
            f"'-x lock_timeout={value}' is not a number of seconds; use for example"
            " '-x lock_timeout=60'."
        ) from None


def _lock_notices(config: Config) -> Notify:
    """Where lock notices go: the API's callback, else Alembic's output (run directly),
    else the log."""
    run = run_of(config)
    if run is not None and run.on_lock is not None:
        return run.on_lock
    if run is None:

        def show(notice: LockNotice) -> None:
            if notice.kind == "waiting":
                config.print_stdout(notice.message)

        return show

    def record(notice: LockNotice) -> None:
        log.info("%s", notice.message)

    return record
