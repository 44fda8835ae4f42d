"""What a migration run reports as it goes: a line (or callback) per applied revision, the
lock check after each one, and the error naming the revision that failed.

:class:`Progress` and :class:`Checkpoint` are Alembic ``on_version_apply`` hooks: they
read the step from the fields Alembic's :class:`~alembic.runtime.migration.MigrationInfo`
documents, never from the hook's arguments by position.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory

from flask_entitydb._compat.alembic import step_revision, steps_announced
from flask_entitydb.errors import EntityDBError, LockLostError, MigrationError
from flask_entitydb.migrations._failures import one_line, version_table_state
from flask_entitydb.migrations._locks.runlock import RunLock
from flask_entitydb.migrations._locks.timeouts import is_lock_timeout
from flask_entitydb.migrations._run import run_of
from flask_entitydb.migrations._server_facts import NOT_SUPPORTED, error_code
from flask_entitydb.migrations.results import Action, AppliedRevision, StartedRevision


class Checkpoint:
    """``on_version_apply`` hook: verify the lock is still held after each revision,
    before its version-table update is committed."""

    def __init__(self) -> None:
        self.lock: RunLock | None = None
        self.verified: Callable[[], bool] = lambda: False
        """Whether the step's journal update already proved the lock held (then
        :meth:`RunLock.check` is not asked again)."""

    def __call__(
        self, *, ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: Any
    ) -> None:
        if self.lock is not None and not self.verified():
            self.lock.check(ctx=ctx, step=step, heads=heads, run_args=run_args)


class Progress:
    """``on_version_apply`` hook: one :class:`AppliedRevision` per step, with its time
    and place in the run, given to the API's callback, else printed (Alembic run
    directly); with :meth:`watch`, a :class:`StartedRevision` as each revision starts."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._run = run_of(config)
        self.applied: list[AppliedRevision] = []
        self._started = time.perf_counter()
        self._position = 0
        self._total = 0

    def start(self) -> None:
        """Time the first step from now (after the lock was taken)."""
        self._started = time.perf_counter()

    def watch(self, migration: MigrationContext) -> None:
        """Count the steps of ``migration``'s run and announce each revision as it
        starts (to the API's ``on_start``)."""
        steps_announced(migration, self._starting)

    def _starting(self, position: int, total: int, step: Any) -> None:
        self._position, self._total = position, total
        on_start = self._run.on_start if self._run is not None else None
        found = step_revision(step)
        if on_start is None or found is None:
            return
        revision, message, up = found
        action: Literal["upgrade", "downgrade"] = "upgrade" if up else "downgrade"
        on_start(StartedRevision(revision, message, action, position, total))

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
        item = AppliedRevision(
            revision=revision,
            message=message,
            action=action,
            elapsed=elapsed,
            position=self._position,
            total=self._total,
        )
        self.applied.append(item)
        if self._run is None:
            self._config.print_stdout(item.describe())
        elif self._run.on_apply is not None:
            self._run.on_apply(item)


def _revision_in_traceback(error: BaseException, config: Config) -> tuple[Script, int] | None:
    """The revision whose file the error was raised in (its innermost frame wins), and
    the line of that file it was raised on."""
    frames: list[tuple[str, int]] = []
    traceback = error.__traceback__
    while traceback is not None:
        frames.append(
            (os.path.realpath(traceback.tb_frame.f_code.co_filename), traceback.tb_lineno)
        )
        traceback = traceback.tb_next
    if not frames:
        return None
    try:
        scripts = {
            os.path.realpath(script.path): script
            for script in ScriptDirectory.from_config(config).walk_revisions()
        }
    except Exception:  # the folder itself is broken; report the original error
        return None
    for path, line in reversed(frames):
        if path in scripts:
            return scripts[path], line
    return None


def revision_failure(
    error: Exception,
    config: Config,
    opts: dict[str, Any],
    *,
    committed_part: bool | None = None,
    run_committed: bool = False,
    lost_lock: str | None = None,
) -> MigrationError | None:
    """A :class:`MigrationError` naming the revision that failed and what state the
    database is in, or ``None`` when the error did not come from a revision.

    :param committed_part: what the journal knows: whether the revision committed part of
        its changes before it failed (``None``: no journal).
    :param run_committed: whether the run committed mid-way before (an
        ``autocommit_block()`` of an earlier revision in one transaction for the run).
    :param lost_lock: why the migration lock was lost, if it was (the failure is then a
        consequence: another run took over).
    """
    found = _revision_in_traceback(error, config)
    if found is None:
        return None
    script, line = found
    if lost_lock is not None:
        where = version_table_state(context.get_context())
        done = (
            "it may have committed part of its changes"
            if committed_part is not False and not context.is_transactional_ddl()
            else "its work was rolled back"
        )
        return LockLostError(
            f"Revision '{script.revision}' stopped because this run lost the migration lock"
            f" while it ran ({lost_lock.rstrip('.')}; the server then refused its work:"
            f" {one_line(error)}); {done}, and {where}; check 'flask db current -v', then run"
            " the command again."
        )
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
    if not isinstance(error, (sa.exc.SQLAlchemyError, EntityDBError)):
        # a Python error of the revision's own code: where it is, not only what it says
        what = f"{type(error).__name__} on line {line} of {os.path.basename(script.path)}: {what}"
    rebuilds = "ALGORITHM=NOCOPY is not" in what and "Try ALGORITHM=INPLACE" in what
    if error_code(error) in NOT_SUPPORTED and rebuilds:
        what = (
            "MariaDB would have to rebuild the table, which the revision's"
            f" online_ddl(op, 'NOCOPY') block forbids: {what}"
        )
        fix = (
            "use online_ddl(op, 'INPLACE') (the server rebuilds the table in place; writes"
            " go on, and 'flask db lint' says roughly how long),"
        )
    elif error_code(error) in NOT_SUPPORTED:
        what = (
            "the server would have to copy the table, blocking writes, which the revision's"
            f" 'online_ddl' block forbids: {what}"
        )
        fix = (
            "make the change with an online schema change tool (pt-online-schema-change,"
            " gh-ost), or remove the 'online_ddl' block to let the server copy the table"
            " (and mark it '# entitydb: allow mysql-table-copy'),"
        )
    repair = (
        f"run 'flask db repair {script.revision}' (it runs again; '--applied' if its changes"
        " are all there)"
    )
    if committed_part and context.is_transactional_ddl():
        state = (
            "it committed part of its changes in an autocommit_block() before it failed, and"
            f" {where}: check the database, {fix}, {repair}"
        )
    elif committed_part is False or context.is_transactional_ddl():
        if not context.is_transactional_ddl() or opts.get("transaction_per_migration"):
            state = f"it was rolled back and {where}; {fix}"
        elif run_committed:
            state = (
                "it was rolled back to the last commit of an autocommit_block() earlier in"
                f" this run, and {where}; {fix}"
            )
        else:
            state = f"the whole run was rolled back, so the database is as it was before; {fix}"
    else:
        state = (
            f"{where}, and the database may hold a partial change from '{script.revision}'"
            f" (this database commits each DDL statement at once): check the database,"
            f" {fix}" + (f", {repair}" if committed_part else "")
        )
    return MigrationError(f"Revision {name} failed: {what}; {state} and run the command again.")
