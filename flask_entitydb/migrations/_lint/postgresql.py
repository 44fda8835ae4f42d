"""PostgreSQL column type changes of ``flask db lint``, decided by the server itself.

Some type changes are metadata-only on PostgreSQL (``varchar(n)`` to ``varchar(m > n)``
or to ``text``: a short ACCESS EXCLUSIVE lock, no rewrite), others rewrite the table and
its indexes under that lock (``integer`` to ``bigint``, a shorter ``varchar``, ``text`` to
``integer``). Which one depends on the types and the server's casts, not on the rows, so
an empty scratch database (:mod:`.scratch`) built from the revisions' recorded
statements answers for the real table: each ``op.alter_column(..., type_=...)`` of a linted
revision on an existing table runs there, and the ``relfilenode`` of the table and of its
indexes is compared before and after. A new file is a rewrite (or an index rebuild).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.engine import URL

from flask_entitydb.migrations._lint.record import Recorded, RecordedRevision
from flask_entitydb.migrations._lint.scratch import Seed, scratch_database, server_message

_FILES = """
SELECT c.relname, c.relfilenode, c.relkind
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = :table AND n.nspname = coalesce(CAST(:schema AS name), current_schema())
UNION ALL
SELECT i.relname, i.relfilenode, i.relkind
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = :table AND n.nspname = coalesce(CAST(:schema AS name), current_schema())
"""


@dataclass(frozen=True)
class Rewrite:
    """A type change the server ran by rewriting the table or rebuilding an index."""

    item: Recorded
    reason: str


def judged_type_change(item: Recorded) -> bool:
    """Whether ``item`` is a type change this module judges: ``alter_column(type_=...)``
    of a column that exists before its revision, on a table that does too."""
    operation = item.operation
    return (
        isinstance(operation, ops.AlterColumnOp)
        and operation.modify_type is not None
        and not item.new_table
        and not item.new_column
    )


def _run(connection: sa.Connection, item: Recorded) -> None:
    for statement in item.statements:
        connection.exec_driver_sql(statement.replace("%", "%%"))


def _files(connection: sa.Connection, operation: ops.AlterColumnOp) -> dict[str, tuple[int, str]]:
    rows = connection.execute(
        sa.text(_FILES), {"table": operation.table_name, "schema": operation.schema}
    )
    return {str(name): (int(node), str(kind)) for name, node, kind in rows}


def _reason(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> str:
    """What was rewritten, or ``""`` when every file stayed."""
    changed = [name for name, (node, _) in before.items() if after.get(name, (node,))[0] != node]
    tables = [name for name in changed if before[name][1] != "i"]
    if tables:
        return f"the table '{tables[0]}' was rewritten (its relfilenode changed)"
    if changed:
        names = ", ".join(f"'{name}'" for name in changed)
        return f"the table was not rewritten, but its index {names} was rebuilt"
    return ""


def type_rewrites(
    url: URL, revisions: list[RecordedRevision], linted: set[str], seed: Seed | None = None
) -> tuple[list[Rewrite], set[int], list[str]]:
    """Run the recorded statements on a scratch database (started from ``seed``), oldest
    first.

    A revision that could not be read contributes the operations recorded before the
    error; an operation whose statements then fail on the scratch database is not judged,
    and the others are.

    :returns: the type changes of ``linted`` revisions that rewrote the table or an index,
        the ``id()`` of every type change the server judged (rewrite or not), and notes on
        what could not be checked.
    """
    found: list[Rewrite] = []
    judged: set[int] = set()
    notes: list[str] = []
    try:
        replays = sum(1 for r in revisions if r.script.revision not in linted)
        with (
            scratch_database(url, seed, replays=replays) as engine,
            engine.connect() as connection,
        ):
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            for revision in revisions:
                for item in revision.operations:
                    operation = item.operation
                    judging = (
                        item.revision in linted
                        and judged_type_change(item)
                        and isinstance(operation, ops.AlterColumnOp)
                    )
                    try:
                        if not judging or not isinstance(operation, ops.AlterColumnOp):
                            _run(connection, item)
                            continue
                        before = _files(connection, operation)
                        _run(connection, item)
                        reason = _reason(before, _files(connection, operation))
                    except sa.exc.DBAPIError as error:
                        if judging:
                            notes.append(
                                f"the server could not try revision '{item.revision}' line"
                                f" {item.line} on the scratch database"
                                f" ({server_message(error, url)}); it is judged by rule"
                            )
                        continue
                    judged.add(id(item))
                    if reason:
                        found.append(Rewrite(item, reason))
    except sa.exc.DBAPIError as error:
        notes.append(
            f"the server check of type changes stopped ({server_message(error, url)});"
            " 'alter-column-type' is judged by rule for the ones after it"
        )
    return found, judged, notes
