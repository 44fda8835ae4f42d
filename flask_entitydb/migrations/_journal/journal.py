"""The journal of one migration run: a committed ``running`` row before each revision's
first statement, ``applied`` with the version table's update, and what is known after a
failure.

The rows are written on a connection of the journal's own (a private pool, same
settings), each write committed at once, so they survive a revision that commits in the
middle (MySQL's DDL, PostgreSQL's ``autocommit_block()``) and a run killed at any point;
only ``applied`` is written on the migrating connection, in the transaction that moves
the version table, so the two agree. On MySQL/MariaDB the ``running`` row is written at
the revision's first statement (already ``committed_part`` when that is a schema change;
a run that dies before it changed nothing and leaves no row).

On SQLite the rows are written on the migrating connection, in the revision's own
transaction: SQLite allows one writer (a second connection could not commit), and
``run_migrations()`` runs each SQLite revision, DDL included, in one transaction, so no
run can be gone with part of it committed (its one row is written with its outcome).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from flask_entitydb.errors import LockLostError, MigrationError
from flask_entitydb.migrations._failures import one_line
from flask_entitydb.migrations._journal.entries import (
    Entry,
    entry_of,
    last_entry,
    latest_rows,
    with_changes,
)
from flask_entitydb.migrations._journal.statements import (
    READS,
    TRANSACTIONAL_STATEMENTS,
    refused_schema_change,
    verb_of,
)
from flask_entitydb.migrations._journal.table import (
    APPLIED,
    ERROR_LENGTH,
    FAILED,
    INTERRUPTED,
    ROLLED_BACK,
    RUNNING,
    RunIdentity,
    create_if_missing,
    journal_table,
    utcnow,
)
from flask_entitydb.migrations._journal.verdicts import Stopped, fence_line, retry_line, stop_line
from flask_entitydb.migrations._locks.discard import rollback_or_discard
from flask_entitydb.migrations._locks.lease import private_engine

log = logging.getLogger("flask_entitydb")

_T = TypeVar("_T")


class Journal:
    """The journal of one run on one bind.

    :param engine: the bind's engine (the journal makes a private pool of it).
    :param galera: read with ``wsrep_sync_wait`` (causal reads across the cluster).
    """

    def __init__(
        self,
        engine: sa.Engine,
        table_name: str,
        identity: RunIdentity,
        *,
        galera: bool = False,
        migrating: sa.Connection | None = None,
    ) -> None:
        self.table = journal_table(table_name)
        t = self.table
        # the statements of every revision, built once (values as parameters)
        self._insert = t.insert()
        self._mark_update = (
            t.update()
            .where(t.c.revision == sa.bindparam("the_revision"), t.c.seq == sa.bindparam("the_seq"))
            .values(committed_part=True)
        )
        self._applied_update: sa.Update | None = None  # at the first applied: lock_held
        self.identity = identity
        self.backend = engine.dialect.name
        self.galera = galera
        self._engine = private_engine(engine)
        self._connection: sa.Connection | None = None
        self._migrating = migrating if self.backend == "sqlite" else None
        self.current: Entry | None = None
        """The row of the revision running now."""
        self._written = False
        """The row of the revision running now is in the table (see the module)."""
        self._defer = self.backend in {"mysql", "mariadb", "sqlite"}
        self._doc: str | None = None
        self._latest: dict[str, Entry] | None = None
        """The latest row of each revision: read once, at the run's first revision (the
        migration lock is held: only this run writes the journal), then kept with this
        run's own writes; dropped after a failure (a rollback may undo rows)."""
        self._marked = False
        """The row of the revision running now says ``committed_part``."""
        self._committed = False
        """The revision running now did commit part of its changes (known, not feared)."""
        self._writes_pending = False
        """MySQL: the revision ran writes that the next implicit commit commits."""
        self._ddl: str | None = None
        """MySQL: the statement that commits implicitly running now (its row says
        ``committed_part``)."""
        self.started: list[tuple[str, int]] = []
        self.committed_in_run = False
        """Whether a revision of this run committed mid-way."""
        self.failure_committed_part: bool | None = None
        """Whether the revision that failed in this run may have committed part of it."""
        self.fence: Callable[[], str | None] | None = None
        """Why the run lost its migration lock, if it did (the lock's ``fence``): asked
        before each statement that commits implicitly."""
        self.lock_held: sa.ColumnElement[bool] | None = None
        """The lock's ``held_condition()``, added to the ``applied`` update."""

    # -- the journal's connection ------------------------------------------------------

    def _conn(self) -> sa.Connection:
        if self._connection is not None and self._connection.invalidated:
            self._connection.close()
            self._connection = None
        if self._connection is None:
            connection = self._engine.connect()
            if self.galera:
                connection.exec_driver_sql("SET SESSION wsrep_sync_wait = 1")
                connection.commit()
            self._connection = connection
        return self._connection

    def _on_own(self, work: Callable[[sa.Connection], _T]) -> _T:
        """Run ``work`` on the journal's connection and commit; once more on a new
        connection when the server had dropped the idle one (``wait_timeout``,
        ``idle_session_timeout``: it sits idle while a revision runs)."""
        for attempt in (1, 2):
            connection = self._conn()
            try:
                result = work(connection)
                connection.commit()
            except sa.exc.DBAPIError as error:
                rollback_or_discard(connection)
                if attempt == 1 and error.connection_invalidated:
                    continue
                raise
            except BaseException:
                rollback_or_discard(connection)
                raise
            return result
        raise AssertionError("unreachable")

    def _write(self, statement: sa.Executable, parameters: dict[str, object] | None = None) -> int:
        if self._migrating is not None and self._migrating.in_transaction():
            # SQLite: in the revision's transaction (see the module's docstring)
            return self._migrating.execute(statement, parameters).rowcount
        return self._on_own(lambda connection: connection.execute(statement, parameters).rowcount)

    def open(self, connection: sa.Connection) -> None:
        """Create the table if it is missing, on ``connection`` (the migrating one, before
        the run's first transaction: the journal's own connection is only opened when a
        revision starts)."""
        create_if_missing(connection, self.table)

    def close(self) -> None:
        """Close the journal's connection and pool (each connection really closed, so the
        server forgets it at once)."""
        if self._connection is not None:
            if self._connection.in_transaction():
                rollback_or_discard(self._connection)
            self._connection.close()
            self._connection = None
        self._engine.dispose()

    def last(self, revision: str) -> Entry | None:
        """The latest row of ``revision`` (the journal is read at the run's first call)."""
        if self._latest is None:
            if self._migrating is not None and self._migrating.in_transaction():
                self._latest = latest_rows(self._migrating, self.table)
            else:
                self._latest = self._on_own(lambda c: latest_rows(c, self.table))
        return self._latest.get(revision)

    def _kept(self, entry: Entry, **changes: object) -> None:
        """This run wrote ``changes`` to the row of ``entry``: keep them in the rows read."""
        kept = None if self._latest is None else self._latest.get(entry.revision)
        if kept is not None and kept.seq == entry.seq:
            self._latest[entry.revision] = with_changes(kept, **changes)  # type: ignore[index]

    # -- before a revision -------------------------------------------------------------

    def start(
        self,
        revision: str,
        doc: str | None,
        direction: str,
        checksum: str,
    ) -> None:
        """Read the revision's last entry (the lock is held, so a ``running`` row of
        another run is a run that is gone), then commit this run's ``running`` row.

        :raises Stopped: the revision was interrupted or failed and may have left part of
            its changes (one line: what is known, the way out).
        :raises MigrationError: another run inserted the same row first (the fence).
        """
        last = self.last(revision)
        if last is not None and last.state == RUNNING and last.run_id != self.identity.run_id:
            self._set(last, INTERRUPTED, finished=False)
            last = self.last(revision)
        if last is not None and last.state in (INTERRUPTED, FAILED):
            if last.state == INTERRUPTED and not last.committed_part:
                log.warning("%s", retry_line(last, doc, self.backend))
            else:
                raise Stopped(stop_line(last, doc, self.backend, "{version_state}"))
        seq = 1 if last is None else last.seq + 1
        row = {
            "revision": revision,
            "seq": seq,
            "direction": direction,
            "state": RUNNING,
            "run_id": self.identity.run_id,
            "host": self.identity.host,
            "pid": self.identity.pid,
            "db_user": self.identity.db_user,
            "tool": self.identity.tool,
            "started_at": utcnow(),
            "finished_at": None,
            "committed_part": False,
            "error": None,
            "checksum": checksum,
        }
        self.current = Entry(**row)  # type: ignore[arg-type]
        self._doc = doc
        self._written = False
        self._marked = False
        self._committed = False
        self._writes_pending = False
        self._ddl = None
        if not self._defer:
            self._insert_current()

    def _insert_current(self, connection: sa.Connection | None = None, **changes: object) -> None:
        """Write the row of the revision running now, with ``changes`` (on ``connection``
        if given, else as :meth:`_write` does).

        :raises MigrationError: another run inserted the same row first (the fence).
        """
        assert self.current is not None
        entry = with_changes(self.current, **changes)
        try:
            if connection is not None:
                connection.execute(self._insert, entry.__dict__)
            else:
                self._write(self._insert, entry.__dict__)
        except sa.exc.IntegrityError:
            self.current = None
            raise MigrationError(fence_line(entry.revision, self._doc)) from None
        self.current = entry
        self._written = True
        if self._latest is not None:
            self._latest[entry.revision] = entry
        self.started.append((entry.revision, entry.seq))

    def _set(
        self,
        entry: Entry,
        state: str,
        *,
        finished: bool = True,
        error: str | None = None,
        committed_part: bool | None = None,
    ) -> int:
        t = self.table
        values: dict[str, object] = {"state": state}
        if committed_part is not None:
            values["committed_part"] = committed_part
        if finished:
            values["finished_at"] = utcnow()
        if error is not None:
            values["error"] = error[:ERROR_LENGTH]
        written = self._write(
            t.update()
            .where(t.c.revision == entry.revision, t.c.seq == entry.seq, t.c.state == RUNNING)
            .values(**values)
        )
        if written:
            self._kept(entry, **values)
        return written

    # -- while it runs -----------------------------------------------------------------

    def mark_committed_part(self) -> None:
        """The revision running now commits part of its changes (a commit of the migrating
        connection: ``autocommit_block()``): record it before the commit (once per
        revision)."""
        if self.current is None:
            return
        self._committed = True
        self.committed_in_run = True
        self._mark()

    def _mark(self) -> None:
        """Commit ``committed_part`` on the row of the revision running now (once)."""
        if self.current is None or self._marked:
            return
        self._marked = True
        if not self._written:
            self._insert_current(committed_part=True)
            return
        self._write(
            self._mark_update, {"the_revision": self.current.revision, "the_seq": self.current.seq}
        )
        self._kept(self.current, committed_part=True)
        self.current = with_changes(self.current, committed_part=True)

    def before_statement(self, statement: str) -> None:
        """MySQL/MariaDB: a statement of the revision is about to run.

        A write is remembered (the next implicit commit commits it). Before a statement
        that commits implicitly (DDL, ``COMMIT``) the row is marked ``committed_part``: it
        commits the revision's earlier writes as it starts, and whether the statement
        itself applied cannot be known if the run dies while it runs. The mark is taken
        back if the server refuses the statement and nothing was committed before
        (:meth:`failed`).
        """
        if self.current is None or self.backend not in {"mysql", "mariadb"}:
            return
        verb = verb_of(statement)
        if verb in TRANSACTIONAL_STATEMENTS:
            if not self._written:
                self._insert_current()
            if verb not in READS:
                self._writes_pending = True
            return
        if self._ddl is not None:
            # the statement before raised and the revision went on: what it did is unknown
            self._committed = True
        why = self.fence() if self.fence is not None else None
        if why is not None:
            done = (
                "it committed part of its changes before (a schema change commits implicitly)"
                if self._committed
                else "nothing of it was committed (its transaction is rolled back)"
            )
            raise LockLostError(
                f"Revision '{self.current.revision}' stopped before its next schema change"
                f" because this run lost the migration lock while it ran ({why}); {done};"
                " check 'flask db current -v', then run the command again."
            )
        if self._writes_pending:
            self._committed = True  # the implicit commit as the statement starts
            self._writes_pending = False
        self._ddl = statement
        self._mark()
        if self._committed:
            self.committed_in_run = True

    def after_statement(self, statement: str) -> None:
        """MySQL/MariaDB: a statement of the revision ran; one that commits implicitly
        committed (the revision did commit part of its changes)."""
        if self.current is None or self._ddl is None or statement != self._ddl:
            return
        self._ddl = None
        self._committed = True
        self.committed_in_run = True

    # -- after it ----------------------------------------------------------------------

    def applied(self, connection: sa.Connection) -> bool:
        """Mark the revision running now ``applied``, on the migrating connection, in the
        transaction that updates the version table. Whether that update also proved the
        migration lock still held (:attr:`lock_held`: the row is only updated while it
        is, so the lock needs no query of its own)."""
        if self.current is None:
            return False
        if not self._written:  # it ran no statement: its one row, with the version's update
            self._insert_current(connection, state=APPLIED, finished_at=utcnow())
            self.current = None
            return False
        if self._applied_update is None:
            t = self.table
            update = t.update().where(
                t.c.revision == sa.bindparam("the_revision"),
                t.c.seq == sa.bindparam("the_seq"),
                t.c.run_id == self.identity.run_id,
            )
            if self.lock_held is not None:
                update = update.where(self.lock_held)
            self._applied_update = update.values(state=APPLIED)
        written = connection.execute(
            self._applied_update,
            {
                "the_revision": self.current.revision,
                "the_seq": self.current.seq,
                "finished_at": utcnow(),
            },
        ).rowcount
        self._kept(self.current, state=APPLIED)
        self.current = None
        return self.lock_held is not None and written == 1

    def stamped(self, connection: sa.Connection, revision: str, checksum: str) -> None:
        """Record a stamp of ``revision`` (``applied``, direction ``stamp``)."""
        self._latest = None  # its row is the latest now: read again
        last = last_entry(connection, self.table, revision)
        connection.execute(
            self.table.insert().values(
                revision=revision,
                seq=1 if last is None else last.seq + 1,
                direction="stamp",
                state=APPLIED,
                run_id=self.identity.run_id,
                host=self.identity.host,
                pid=self.identity.pid,
                db_user=self.identity.db_user,
                tool=self.identity.tool,
                started_at=utcnow(),
                finished_at=utcnow(),
                committed_part=False,
                error=None,
                checksum=checksum,
            )
        )

    def failed(self, error: BaseException) -> bool:
        """The revision running now raised ``error``: record it (``failed`` when it may
        have committed part of its changes, else ``rolled_back``). Whether part of it was
        committed.

        On MySQL/MariaDB a schema change the server refused (a lock wait timeout, an
        ``ALGORITHM`` it cannot use, a duplicate name...) applied nothing: when nothing of
        the revision was committed before it either, the row's ``committed_part``, marked
        before the statement ran, is taken back."""
        current, self.current = self.current, None
        self._latest = None  # a rollback may undo this run's rows: read them again
        if current is None:
            return False
        refused = refused_schema_change(self._ddl, error)
        if current.committed_part and not self._committed and refused:
            current = with_changes(current, committed_part=False)
        self._ddl = None
        if not self._written:  # it failed before its first statement: nothing ran
            self.current = current
            try:
                self._insert_current(
                    state=ROLLED_BACK, finished_at=utcnow(), error=one_line(error)[:ERROR_LENGTH]
                )
            except (sa.exc.DBAPIError, MigrationError):
                log.warning(
                    "The migration journal could not record the failure of '%s'.",
                    current.revision,
                )
            self.current = None
            self.failure_committed_part = False
            return False
        try:
            self._set(
                current,
                FAILED if current.committed_part else ROLLED_BACK,
                error=one_line(error),
                committed_part=current.committed_part,
            )
        except sa.exc.DBAPIError:
            log.warning(
                "The migration journal could not record the failure of '%s'.", current.revision
            )
        self.failure_committed_part = current.committed_part
        return current.committed_part

    def after_rollback(self, why: str) -> None:
        """The run failed and its transaction was rolled back: this run's rows still
        ``running`` (their ``applied`` update was rolled back with it) are
        ``rolled_back``, or ``failed`` if they committed part of their changes."""
        t = self.table
        try:
            for revision, seq in self.started:
                entry = self._row(revision, seq)
                if entry is None or entry.state != RUNNING:
                    continue
                state = FAILED if entry.committed_part else ROLLED_BACK
                self._set(entry, state, error=why)
        except sa.exc.DBAPIError:
            log.warning("The migration journal could not record the end of the run (%s).", t.name)

    def _row(self, revision: str, seq: int) -> Entry | None:
        t = self.table

        def read(connection: sa.Connection) -> Entry | None:
            row = connection.execute(
                sa.select(t).where(t.c.revision == revision, t.c.seq == seq)
            ).first()
            return None if row is None else entry_of(row)

        return self._on_own(read)
