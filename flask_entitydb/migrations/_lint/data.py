"""Data statements of ``flask db lint``, judged by the rows they touch.

An ``UPDATE``/``DELETE``/``REPLACE``, an ``INSERT ... SELECT`` (MySQL/MariaDB lock the rows
it reads), a Core statement in ``op.execute()`` or an ``op.bulk_insert()`` into an existing
table keeps every row it touches locked until its transaction commits: writers of those
rows wait for all of it. How many rows that is comes from the app's database (read only):
the server's ``EXPLAIN`` of the statement, else its estimate of the table's rows
(``information_schema.TABLES``, PostgreSQL ``pg_class.reltuples``), with a ``LIMIT`` as the
bound it is. More than ``ENTITYDB_LINT_MAX_ROWS`` rows in one transaction (statements of one
revision outside ``autocommit_block()`` count together until they commit) is the hazard;
a bounded batch is not. When the database does not hold the table, a statement that
changes every row of it is flagged as before (its size is unknown).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.sql.dml import Delete, Update

from flask_entitydb.migrations._connections import closed_after
from flask_entitydb.migrations._lint.record import Recorded, RecordedRevision, raw_sql
from flask_entitydb.migrations._lint.sqltext import (
    DATA_KEYWORDS,
    has_where,
    keyword,
    limit,
    source_table,
    target_table,
)
from flask_entitydb.migrations._server_facts import MYSQL

DEFAULT_MAX_ROWS = 10_000
"""``ENTITYDB_LINT_MAX_ROWS``: measured here, an ``UPDATE`` of 10,000 rows holds their locks
for 0.02 s on MariaDB and 0.18 s on PostgreSQL (200,000 rows: 0.74 s and 2.4 s; see
docs/safe-migrations.md)."""


_IMPLICIT_COMMIT = frozenset(("ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE"))
_UNKNOWN = (
    "it changes every row of the table, and the database lint reads does not hold the"
    " table, so its size is unknown"
)


@dataclass(frozen=True)
class DataStatement:
    """What one data statement touches, as far as its operation tells."""

    item: Recorded
    table: str | None
    """The table whose rows it locks (for ``INSERT ... SELECT``: the one it reads)."""
    sql: str | None
    """Its SQL for ``EXPLAIN`` (``None``: it could not be rendered)."""
    whole_table: bool
    """No ``WHERE`` and no ``LIMIT``: every row of :attr:`table`."""
    bound: int | None = None
    """A ``LIMIT``, or the number of rows of a ``bulk_insert``."""
    inserted: bool = False
    """A ``bulk_insert``: it touches the :attr:`bound` rows it inserts."""


@dataclass(frozen=True)
class Touched:
    """A data statement over the threshold (alone or with the others of its transaction)."""

    item: Recorded
    detail: str


def data_statement(item: Recorded, backend: str, dialect: sa.Dialect) -> DataStatement | None:
    """The data statement ``item`` runs, or ``None`` (DDL, a new table, a plain
    ``INSERT ... VALUES``, an ``INSERT ... SELECT`` on PostgreSQL, which locks no row it
    reads)."""
    operation = item.operation
    if isinstance(operation, ops.BulkInsertOp):
        name = str(operation.table.name)
        if item.new_table or name in item.created:
            return None
        return DataStatement(item, name, None, False, len(operation.rows), inserted=True)
    if not isinstance(operation, ops.ExecuteSQLOp):
        return None
    sql = raw_sql(operation)
    if sql is None:
        return _core_statement(item, operation.sqltext, dialect)
    word = keyword(sql)
    if word not in DATA_KEYWORDS:
        return None
    table = target_table(sql)
    if word in ("INSERT", "REPLACE", "MERGE") and "SELECT" in sql.upper():
        if backend not in MYSQL:
            return None
        table = source_table(sql)
        return DataStatement(item, table, sql, table is not None, None)
    if word == "INSERT":
        return None
    if table is not None and table in item.created:
        return None
    bound = limit(sql)
    return DataStatement(item, table, sql, not has_where(sql) and bound is None, bound)


def _core_statement(item: Recorded, statement: object, dialect: sa.Dialect) -> DataStatement | None:
    if not isinstance(statement, (Update, Delete)):
        return None
    table = str(getattr(statement.table, "name", "")) or None
    if table is None or table in item.created:
        return None
    try:
        sql: str | None = str(
            statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        )
    except sa.exc.CompileError:
        sql = None
    return DataStatement(item, table, sql, statement.whereclause is None)


class RowEstimates:
    """The app database's estimates of rows, read only."""

    def __init__(self, connection: sa.Connection, backend: str) -> None:
        self.connection = connection
        self.backend = backend
        self.explains = backend in MYSQL or backend == "postgresql"
        """Whether the server's ``EXPLAIN`` estimates rows (not SQLite's)."""

    @contextmanager
    def _attempt(self) -> Iterator[None]:
        try:
            yield
        finally:
            self.connection.rollback()

    def explain(self, sql: str) -> int | None:
        """The server's estimate of the rows ``sql`` reads, from ``EXPLAIN`` (which runs
        nothing); ``None`` when the server cannot explain it here."""
        if not self.explains:
            return None
        escaped = sql.replace("%", "%%")
        try:
            with self._attempt():
                if self.backend == "postgresql":
                    plan = self.connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {escaped}")
                    document: Any = plan.scalar()
                    if isinstance(document, str):
                        document = json.loads(document)
                    return max(_plan_rows(document[0]["Plan"]), default=0)
                rows = self.connection.exec_driver_sql(f"EXPLAIN {escaped}").mappings().all()
                return max((int(row["rows"] or 0) for row in rows), default=0)
        except sa.exc.DBAPIError:
            return None

    def table_rows(self, table: str, at_least: int) -> int | None:
        """The server's estimate of the rows of ``table``, counted up to ``at_least + 1``
        where there is none; ``None`` when the database has no such table."""
        try:
            with self._attempt():
                estimate = self._estimate(table)
                if estimate is None:
                    return None
                if estimate >= 0:
                    return estimate
                quoted = self.connection.dialect.identifier_preparer.quote(table)
                return int(
                    self.connection.exec_driver_sql(
                        f"SELECT count(*) FROM (SELECT 1 FROM {quoted} LIMIT {at_least + 1}) s"
                    ).scalar_one()
                )
        except sa.exc.DBAPIError:
            return None

    def _estimate(self, table: str) -> int | None:
        if self.backend in MYSQL:
            found = self.connection.execute(
                sa.text(
                    "SELECT TABLE_ROWS FROM information_schema.TABLES"
                    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
                ),
                {"t": table},
            ).first()
            return None if found is None else int(found[0] or 0)
        if self.backend == "postgresql":
            found = self.connection.execute(
                sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
            ).first()
            return None if found is None else int(found[0])
        names = sa.inspect(self.connection).get_table_names()
        return -1 if table in names else None


def _plan_rows(plan: dict[str, object]) -> Iterator[int]:
    yield int(str(plan.get("Plan Rows", 0)).split(".")[0])
    for child in plan.get("Plans", []) or []:  # type: ignore[attr-defined]
        yield from _plan_rows(child)


def touched_rows(
    statement: DataStatement, estimates: RowEstimates | None, threshold: int
) -> tuple[int | None, str]:
    """The rows ``statement`` may touch and how that is known (``None``: unknown)."""
    if statement.inserted:
        return statement.bound, f"it inserts {statement.bound} rows"
    if estimates is None:
        return None, ""
    if statement.sql is not None:
        explained = estimates.explain(statement.sql)
        if explained is not None:
            rows = min(explained, statement.bound) if statement.bound else explained
            return rows, f"the server's EXPLAIN estimates {rows} rows"
    if statement.table is None or (estimates.explains is False and not statement.whole_table):
        return None, ""  # SQLite explains no row counts: a WHERE bounds an unknown number
    counted = estimates.table_rows(statement.table, threshold)
    if counted is None:
        return None, ""
    rows = min(counted, statement.bound) if statement.bound else counted
    return rows, f"the server estimates {rows} rows in '{statement.table}'"


def data_findings(
    revisions: list[RecordedRevision],
    engine: sa.Engine,
    backend: str,
    threshold: int,
) -> tuple[list[Touched], list[str]]:
    """The data statements of ``revisions`` (the linted ones, oldest first) that touch more
    than ``threshold`` rows in one transaction, and notes."""
    found: list[Touched] = []
    notes: list[str] = []
    statements = [
        [s for item in r.operations if (s := data_statement(item, backend, engine.dialect))]
        for r in revisions
    ]
    if not any(statements):
        return found, notes
    with contextlib.ExitStack() as stack:
        try:
            connection: sa.Connection | None = stack.enter_context(closed_after(engine))
        except sa.exc.DBAPIError:
            connection = None
            notes.append(
                "the database could not be read, so data statements are judged without row"
                " estimates (one that changes every row of a table is flagged)"
            )
        estimates = RowEstimates(connection, backend) if connection is not None else None
        _judge_revisions(revisions, statements, estimates, backend, threshold, found, notes)
    return found, notes


def _judge_revisions(
    revisions: list[RecordedRevision],
    statements: list[list[DataStatement]],
    estimates: RowEstimates | None,
    backend: str,
    threshold: int,
    found: list[Touched],
    notes: list[str],
) -> None:
    """Add to ``found`` (and ``notes``) the verdicts on the data statements of each
    revision, transaction by transaction."""
    in_transaction = 0
    reported = False
    for revision, data in zip(revisions, statements, strict=True):
        if backend != "postgresql":  # one transaction per revision there
            in_transaction, reported = 0, False
        previous: Recorded | None = None
        for statement in data:
            item = statement.item
            if previous is not None and _committed_between(revision, previous, item, backend):
                in_transaction, reported = 0, False
            previous = item
            rows, how = touched_rows(statement, estimates, threshold)
            if rows is None:
                if statement.whole_table:
                    found.append(Touched(item, _UNKNOWN))
                continue
            if item.autocommit:
                if rows > threshold:
                    found.append(Touched(item, f"{how}, more than {threshold}"))
                continue
            in_transaction += rows
            if rows > threshold:
                found.append(Touched(item, f"{how}, more than {threshold}"))
                reported = True
            elif in_transaction > threshold and not reported:
                found.append(
                    Touched(
                        item,
                        f"{how}; with the statements before it in the same transaction"
                        f" about {in_transaction} rows stay locked until it commits,"
                        f" more than {threshold}",
                    )
                )
                reported = True
            elif statement.whole_table and statement.table:
                notes.append(
                    f"{_where(item)} changes every row of '{statement.table}', and is"
                    f" not flagged because the database holds about {rows} rows there"
                    f" (ENTITYDB_LINT_MAX_ROWS={threshold}): lint against a database of"
                    " production size to judge it"
                )


def _committed_between(
    revision: RecordedRevision, first: Recorded, second: Recorded, backend: str
) -> bool:
    """Whether the transaction of ``first`` commits before ``second`` runs: an
    ``autocommit_block()`` starts or ends between them, or (MySQL/MariaDB) a DDL statement
    commits implicitly."""
    if first.autocommit != second.autocommit:
        return True
    operations = revision.operations
    positions = {id(item): index for index, item in enumerate(operations)}
    start, end = positions[id(first)], positions[id(second)]
    if backend in MYSQL:
        return any(_commits(item) for item in operations[start + 1 : end])
    return False


def _commits(item: Recorded) -> bool:
    """Whether ``item`` is DDL (MySQL/MariaDB commit before and after each)."""
    operation = item.operation
    if isinstance(operation, ops.BulkInsertOp):
        return False
    if isinstance(operation, ops.ExecuteSQLOp):
        return keyword(raw_sql(operation) or "") in _IMPLICIT_COMMIT
    return True


def _where(item: Recorded) -> str:
    return f"revision '{item.revision}' line {item.line}"
