"""How the journal sees a run: each revision's ``upgrade()``/``downgrade()`` wrapped for
the run (the row before its first statement, the failure after it), the migrating
connection's statements (before and after each) and commits (what committed part of it),
and an ``on_version_apply`` hook (``applied`` with the version table's update)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory

from flask_entitydb.migrations._journal.journal import Journal
from flask_entitydb.migrations._journal.table import checksum


def _wrapped(
    journal: Journal,
    script: Script,
    direction: str,
    function: Callable[..., Any],
) -> Callable[..., Any]:
    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        journal.start(
            script.revision,
            script.doc,
            direction,
            checksum(script.path),
        )
        try:
            return function(*args, **kwargs)
        except BaseException as error:
            journal.failed(error)
            raise

    return run


@contextlib.contextmanager
def watching(
    journal: Journal,
    script_directory: ScriptDirectory,
    connection: sa.Connection,
) -> Iterator[None]:
    """Journal every revision of ``script_directory`` run on ``connection`` while the
    block runs; the revision modules are as they were afterwards."""
    originals: list[tuple[Any, str, Any]] = []

    def before(conn: sa.Connection, cursor: Any, statement: str, *_: Any) -> None:
        journal.before_statement(statement)

    def after(conn: sa.Connection, cursor: Any, statement: str, *_: Any) -> None:
        journal.after_statement(statement)

    def on_commit(conn: sa.Connection) -> None:
        journal.mark_committed_part()  # only while a revision runs (autocommit_block())

    try:
        for script in script_directory.walk_revisions():
            module = script.module
            for direction in ("upgrade", "downgrade"):
                function = getattr(module, direction, None)
                if callable(function):
                    originals.append((module, direction, function))
                    setattr(module, direction, _wrapped(journal, script, direction, function))
        sa.event.listen(connection, "before_cursor_execute", before)
        sa.event.listen(connection, "after_cursor_execute", after)
        sa.event.listen(connection, "commit", on_commit)
        yield
    finally:
        for module, direction, function in originals:
            setattr(module, direction, function)
        if sa.event.contains(connection, "before_cursor_execute", before):
            sa.event.remove(connection, "before_cursor_execute", before)
            sa.event.remove(connection, "after_cursor_execute", after)
            sa.event.remove(connection, "commit", on_commit)


class JournalHook:
    """``on_version_apply`` hook: the revision run now is ``applied`` (in the transaction
    of the version table's update); a stamp is recorded as one."""

    def __init__(self) -> None:
        self.journal: Journal | None = None
        self.lock_verified = False
        """Whether the last step's ``applied`` update proved the migration lock held."""

    def __call__(
        self, *, ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: Any
    ) -> None:
        self.lock_verified = False
        connection = ctx.connection
        if self.journal is None or connection is None:
            return
        if not step.is_stamp:
            self.lock_verified = self.journal.applied(connection)
            return
        if not step.is_upgrade:
            return
        for revision in step.up_revision_ids:
            script = step.revision_map.get_revision(revision)
            path = getattr(script, "path", None)
            self.journal.stamped(connection, revision, checksum(path) if path else "")
