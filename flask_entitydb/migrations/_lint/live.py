"""Data-dependent checks of ``flask db lint``: operations that would fail on the app's
database as it is, found with read-only queries before they run.

Only when the database is at the revision right before the linted ones (the data is what
the first of them will meet), for operations on tables and columns that exist there:

- a unique index or constraint over values that are not unique;
- ``NOT NULL`` over a column that holds NULLs;
- a shorter ``VARCHAR``/``CHAR`` than the longest value;
- a foreign key (not ``NOT VALID``) with orphan rows;
- a ``CHECK`` (not ``NOT VALID``) that rows violate.

Each is reported as "would fail on this database: N rows ...", with the query that shows
those rows. An operation after a data statement of the linted revisions on the same table
(a backfill that may fix the rows) is not checked: the rows it meets are not the ones here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from flask_entitydb.migrations._connections import closed_after
from flask_entitydb.migrations._lint.data import data_statement
from flask_entitydb.migrations._lint.record import Recorded, RecordedRevision
from flask_entitydb.migrations._server_facts import MYSQL


@dataclass(frozen=True)
class WouldFail:
    """An operation the rows of the app's database make fail."""

    item: Recorded
    detail: str


@dataclass(frozen=True)
class _Check:
    count: str
    """A query of one row: the number of offending rows."""
    show: str
    """The query that shows them."""
    what: str
    """What is wrong with them, after "N rows of 'table' "."""
    table: str


def failing_on_data(
    revisions: list[RecordedRevision], engine: sa.Engine, backend: str, *, query: bool = True
) -> tuple[list[WouldFail], int]:
    """The operations of ``revisions`` (the linted ones, oldest first, the database at the
    revision before the first) that the rows of the database make fail.

    :param query: read the database (else only count the operations there are to check).
    :returns: those operations, and how many operations were to be checked.
    """
    checks: list[tuple[Recorded, _Check]] = []
    changed: set[str] = set()
    everything_changed = False
    quote = engine.dialect.identifier_preparer.quote
    for revision in revisions:
        for item in revision.operations:
            statement = data_statement(item, backend, engine.dialect)
            if statement is not None or _data_of_unknown_table(item):
                if statement is None or statement.table is None:
                    everything_changed = True
                else:
                    changed.add(statement.table)
                continue
            check = _check(item, backend, quote, engine.dialect)
            if check is None or everything_changed or check.table in changed:
                continue
            checks.append((item, check))
    if not checks or not query:
        return [], len(checks)
    found: list[WouldFail] = []
    try:
        with closed_after(engine) as connection:
            strict = _strict(connection, backend)
            for item, check in checks:
                rows = _count(connection, check.count)
                if rows:
                    verb = "would fail on this database" if strict else "would change data"
                    found.append(
                        WouldFail(
                            item,
                            f"{verb}: {rows} row{'s' if rows != 1 else ''} of"
                            f" '{check.table}' {check.what}; see them with: {check.show}",
                        )
                    )
    except sa.exc.DBAPIError:
        pass  # the database cannot be read: the data statements' check says so
    return found, len(checks)


def _data_of_unknown_table(item: Recorded) -> bool:
    """An ``op.execute()`` of a construct or text lint cannot place (a stored procedure
    call, a ``WITH``): it may change any table."""
    operation = item.operation
    if not isinstance(operation, ops.ExecuteSQLOp):
        return False
    text = operation.sqltext if isinstance(operation.sqltext, str) else ""
    head = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
    return head in ("CALL", "WITH", "DO", "EXEC", "EXECUTE")


def _count(connection: sa.Connection, sql: str) -> int:
    try:
        return int(connection.exec_driver_sql(sql.replace("%", "%%")).scalar() or 0)
    except sa.exc.DBAPIError:
        connection.rollback()
        return 0  # a table or column the database does not have (yet): nothing to check
    finally:
        connection.rollback()


def _strict(connection: sa.Connection, backend: str) -> bool:
    """Whether the server refuses data it would have to change (MySQL/MariaDB strict
    mode; always elsewhere)."""
    if backend not in MYSQL:
        return True
    mode = str(connection.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar() or "")
    return "STRICT_TRANS_TABLES" in mode or "STRICT_ALL_TABLES" in mode


def _check(item: Recorded, backend: str, quote: Any, dialect: sa.Dialect) -> _Check | None:
    operation = item.operation
    if item.new_table:
        return None
    if isinstance(operation, ops.CreateIndexOp) and operation.unique:
        return _unique(operation.table_name, operation.columns, quote)
    if isinstance(operation, ops.CreateUniqueConstraintOp):
        return _unique(operation.table_name, operation.columns, quote)
    if isinstance(operation, ops.AlterColumnOp) and not item.new_column:
        return _column_change(operation, backend, quote)
    if isinstance(operation, ops.CreateForeignKeyOp):
        if operation.kw.get("postgresql_not_valid"):
            return None
        return _orphans(operation, quote)
    if isinstance(operation, ops.CreateCheckConstraintOp):
        if operation.kw.get("postgresql_not_valid"):
            return None
        condition = operation.condition
        if not isinstance(condition, str):
            try:
                condition = str(
                    condition.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
                )
            except sa.exc.CompileError:
                return None
        table = quote(operation.table_name)
        where = f"NOT ({condition})"
        return _Check(
            f"SELECT count(*) FROM {table} WHERE {where}",
            f"SELECT * FROM {table} WHERE {where}",
            f"violate the check ({condition})",
            operation.table_name,
        )
    return None


def _names(columns: Sequence[Any]) -> list[str] | None:
    """Plain column names, or ``None`` when one is an expression."""
    names = [
        column if isinstance(column, str) else getattr(column, "name", None) for column in columns
    ]
    if not names or any(not isinstance(name, str) for name in names):
        return None
    return [str(name) for name in names]


def _unique(table_name: str, columns: Sequence[Any], quote: Any) -> _Check | None:
    names = _names(columns)
    if names is None:
        return None
    table = quote(table_name)
    listed = ", ".join(quote(name) for name in names)
    present = " AND ".join(f"{quote(name)} IS NOT NULL" for name in names)
    groups = (
        f"SELECT {listed}, count(*) AS n FROM {table} WHERE {present}"
        f" GROUP BY {listed} HAVING count(*) > 1"
    )
    return _Check(
        f"SELECT sum(n) FROM ({groups}) d",
        groups,
        f"share values of ({', '.join(names)}), which the unique index needs distinct",
        table_name,
    )


def _column_change(operation: ops.AlterColumnOp, backend: str, quote: Any) -> _Check | None:
    table = quote(operation.table_name)
    column = quote(operation.column_name)
    if operation.modify_nullable is False:
        where = f"{column} IS NULL"
        return _Check(
            f"SELECT count(*) FROM {table} WHERE {where}",
            f"SELECT * FROM {table} WHERE {where}",
            f"hold NULL in '{operation.column_name}', which becomes NOT NULL",
            operation.table_name,
        )
    new = operation.modify_type
    if isinstance(new, sa.String) and not isinstance(new, sa.Enum) and new.length:
        length = "length" if backend == "sqlite" else "char_length"
        where = f"{length}({column}) > {int(new.length)}"
        return _Check(
            f"SELECT count(*) FROM {table} WHERE {where}",
            f"SELECT * FROM {table} WHERE {where}",
            f"hold values of '{operation.column_name}' longer than {new.length} characters",
            operation.table_name,
        )
    return None


def _orphans(operation: ops.CreateForeignKeyOp, quote: Any) -> _Check | None:
    local, remote = operation.local_cols, operation.remote_cols
    if not local or len(local) != len(remote):
        return None
    child, parent = quote(operation.source_table), quote(operation.referent_table)
    present = " AND ".join(f"c.{quote(name)} IS NOT NULL" for name in local)
    joined = " AND ".join(
        f"p.{quote(theirs)} = c.{quote(ours)}" for ours, theirs in zip(local, remote, strict=True)
    )
    where = f"{present} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {joined})"
    return _Check(
        f"SELECT count(*) FROM {child} c WHERE {where}",
        f"SELECT c.* FROM {child} c WHERE {where}",
        f"refer to ({', '.join(local)}) values that '{operation.referent_table}' does not hold",
        operation.source_table,
    )
