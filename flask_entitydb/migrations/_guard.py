"""The pending-migration guard: ``ENTITYDB_PENDING_MIGRATIONS``.

On the first request a process serves, the database's revision is compared with the head
of the migrations folder, once (not per request):

``"ignore"``
    No check, no hook (the default outside debug mode: deployments run
    ``flask db upgrade`` before starting, and production requests pay nothing).
``"warn"``
    Log a warning on the ``flask_entitydb`` logger when the database is behind (the
    default in debug mode, where a forgotten ``flask db upgrade`` is the usual cause of
    confusing errors).
``"error"``
    Answer every request with ``503 Service Unavailable`` while the database is behind.
    The response says only :data:`REFUSAL`, nothing about the revisions or commands; the
    details (the revisions, "run 'flask db upgrade'") go to the log, as an error on the
    ``flask_entitydb`` logger. The check is repeated at most every
    :data:`RECHECK_SECONDS` until the database is at head, so the process starts serving
    after the upgrade without a restart.

A database *ahead* of the code (its revision is one no file of this app's migrations
defines: the usual sign of a rollback deploy, or of an older process still serving during
a rolling upgrade) is a state of its own, decided by ``ENTITYDB_DATABASE_AHEAD``:
``"warn"`` (the default) serves and logs one warning naming the revision and what to do;
``"error"`` answers 503 like a database behind.

Once the database has been found at head, each request costs one attribute check. The
revision is read through the app's ``env.py`` (as ``flask db current`` reads it), so the
options given to ``run_migrations()`` there, such as a custom ``version_table``, apply. An
app without a migrations folder is not checked. When the database cannot be reached,
requests are not blocked: the check is retried later and the request goes on (it will
report the database error itself).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.exceptions import ServiceUnavailable

from flask_entitydb._settings.model import PendingPolicy
from flask_entitydb.state import EntityDBState, get_state

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

log = logging.getLogger("flask_entitydb")

REFUSAL = "The database schema is out of date; the service is not available yet."
"""The body of the 503 responses of the ``"error"`` policy (the details are logged)."""

RECHECK_SECONDS = 5.0
"""With ``"error"``, how often a process that found the database behind checks again."""


class PendingMigrationsGuard:
    """A ``before_request`` hook comparing the database's revision with the head once."""

    def __init__(self, app: Flask, policy: PendingPolicy) -> None:
        self.app = app
        self.policy = policy
        self.done = False
        """``True`` once there is nothing more to check in this process."""
        self.refusal: str | None = None
        """What was logged while the database is behind (``"error"`` policy); requests
        are answered with :data:`REFUSAL`."""
        self._next_check = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        if self.done:
            return
        if time.monotonic() >= self._next_check:
            with self._lock:
                if not self.done and time.monotonic() >= self._next_check:
                    self._check()
        if self.refusal is not None:
            raise ServiceUnavailable(description=REFUSAL)

    def _check(self) -> None:
        import sqlalchemy as sa

        from flask_entitydb.errors import EntityDBError
        from flask_entitydb.migrations._failures import one_line
        from flask_entitydb.migrations._folders import bind_directory
        from flask_entitydb.migrations.binds import using_bind

        state = get_state(self.app)
        behind = None
        try:
            for key in state.settings.bind_keys:  # every bind with migrations, default first
                folder = bind_directory(state.settings.migrations_dir, key)
                if not os.path.isdir(os.path.join(folder, "versions")):
                    continue
                with using_bind(key):
                    script, current = _database_heads(self.app)
                head_ids = {s.revision for s in script.get_revisions("heads") if s is not None}
                if current != head_ids:
                    behind = key, script, current, head_ids
                    break
        except (sa.exc.DBAPIError, EntityDBError) as error:
            log.warning(
                "Could not compare the database's revision with the migrations (%s); will"
                " try again.",
                one_line(error),
            )
            self._next_check = time.monotonic() + RECHECK_SECONDS
            return
        if behind is None:
            self.refusal = None
            self.done = True
            return
        key, script, current, head_ids = behind
        database = "The database" if key is None else f"The database of the bind '{key}'"
        upgrade = "'flask db upgrade'" if key is None else f"'flask db upgrade --bind {key}'"
        at = ", ".join(f"'{rev}'" for rev in sorted(current)) or "no revision"
        head = ", ".join(f"'{rev}'" for rev in sorted(head_ids))
        unknown = sorted(rev for rev in current if not _defined(script, rev))
        if unknown:
            self._ahead(state, unknown, head, database)
            return
        message = (
            f"{database} is at {at} but the application's migrations are at {head}; run {upgrade}."
        )
        if self.policy == "warn":
            log.warning("%s", message)
            self.done = True
        else:
            if self.refusal is None:
                log.error("%s Requests are answered with 503 until then.", message)
            self.refusal = message
            self._next_check = time.monotonic() + RECHECK_SECONDS

    def _ahead(self, state: EntityDBState, unknown: list[str], head: str, database: str) -> None:
        names = ", ".join(f"'{rev}'" for rev in unknown)
        message = (
            f"{database} is AHEAD of this code: it is at {names}, which none of the"
            f" application's migrations defines (they end at {head}); a newer release"
            " migrated it (a rollback deploy?). Deploy that release again, or run its"
            " 'flask db downgrade' to the revision this code knows."
        )
        if self.policy == "error" and state.settings.database_ahead == "error":
            if self.refusal is None:
                log.error("%s Requests are answered with 503 until then.", message)
            self.refusal = message
            self._next_check = time.monotonic() + RECHECK_SECONDS
            return
        log.warning("%s Serving requests meanwhile (ENTITYDB_DATABASE_AHEAD='warn').", message)
        self.refusal = None
        self.done = True


def _database_heads(app: Flask) -> tuple[ScriptDirectory, set[str]]:
    """The migrations' script directory and the revisions the database is at, read
    through the app's ``env.py`` (its ``version_table`` and other options apply)."""
    from flask_entitydb.migrations._config import make_config
    from flask_entitydb.migrations._context import read_heads, script_directory

    config = make_config(app)
    script = script_directory(config)
    return script, set(read_heads(config, script))


def _defined(script: ScriptDirectory, revision: str) -> bool:
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


def install_pending_migrations_guard(app: Flask) -> PendingMigrationsGuard | None:
    """Add the guard to ``app`` according to its ``ENTITYDB_PENDING_MIGRATIONS``; nothing
    is added for ``"ignore"``.

    :returns: the guard, or ``None``.
    """
    state = get_state(app)
    policy = state.settings.pending_migrations
    if policy == "ignore":
        return None
    guard = PendingMigrationsGuard(app, policy)
    app.before_request(guard)
    return guard
