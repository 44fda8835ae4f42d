"""The rules of ``flask db lint``: what each hazard does to a running app and its recipe,
and the checks that need only the recorded operations (every backend).

Each rule here is demonstrated on the real servers by ``tests/test_lint_hazards.py``
(docs/safe-migrations.md lists the measured figures).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.exc import CompileError
from sqlalchemy.sql.ddl import ExecutableDDLElement
from sqlalchemy.sql.elements import ClauseElement, TextClause

from flask_entitydb.migrations._lint.record import Recorded


@dataclass(frozen=True)
class Rule:
    """A hazard ``flask db lint`` reports."""

    name: str
    effect: str
    """What the operation does to the app while it runs, and which old code breaks."""
    recipe: str
    """The safe way to get the same result."""
    backends: tuple[str, ...] = ("sqlite", "mysql", "postgresql")


_EXPAND_CONTRACT = (
    "expand/contract: first release code that no longer maps it (remove it from the"
    " entity, deploy everywhere), then drop it in a revision of a later release, marked"
    " '# entitydb: allow {rule}'"
)

RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            "drop-table",
            "the previous release, still serving during a rolling deploy, maps this table:"
            " every query of it fails ('table doesn't exist') until all old processes are gone",
            _EXPAND_CONTRACT.format(rule="drop-table"),
        ),
        Rule(
            "drop-column",
            "the previous release, still serving during a rolling deploy, selects this column"
            " in every query of its entity: they all fail ('unknown column') until all old"
            " processes are gone",
            _EXPAND_CONTRACT.format(rule="drop-column"),
        ),
        Rule(
            "rename-table",
            "the previous release still uses the old table name: its queries fail until all"
            " old processes are gone",
            "add the new table (or a view) and write both in one release, move readers, then"
            " drop the old one in a later release; or keep the name and set '__tablename__'",
        ),
        Rule(
            "rename-column",
            "the previous release still selects the old column name: its queries of the"
            " table fail until all old processes are gone",
            "add the new column, write both and backfill in one release, read the new one"
            " in the next, drop the old one in a later release (expand/contract); or keep the"
            " column name and map it with mapped_column('old_name')",
        ),
        Rule(
            "add-not-null-column",
            "the previous release inserts rows without this column: every such INSERT fails"
            " (MySQL/MariaDB: 'Field doesn't have a default value'; PostgreSQL and SQLite:"
            " NOT NULL violation, and the ALTER itself fails on a table with rows)",
            "give the column a server default in the revision and on the entity"
            " (mapped_column(..., server_default=...), or 'flask db check' reports the"
            " difference), or add it nullable, backfill in batches, and make it NOT NULL"
            " in a later release",
        ),
        Rule(
            "alter-column-type",
            "changing the type rewrites the table: writes (PostgreSQL: reads too) wait for"
            " the whole copy; old code may read or write values the new type rejects",
            "add a column of the new type, write both and backfill in batches, switch"
            " readers, then drop the old column in a later release",
        ),
        Rule(
            "data-migration",
            "a data statement (UPDATE, DELETE, INSERT ... SELECT on MySQL/MariaDB, a"
            " bulk_insert) that touches more rows than ENTITYDB_LINT_MAX_ROWS in the"
            " migration's transaction keeps every one of them locked until it commits:"
            " writers of those rows wait for all of it",
            "update in batches of a few thousand rows by primary key range (or"
            " ORDER BY id LIMIT n), each committed on its own (outside the revision, or in"
            " op.get_context().autocommit_block())",
        ),
        Rule(
            "fails-on-data",
            "the rows of this database make the operation fail (or, on MySQL/MariaDB without"
            " strict mode, change them): the upgrade stops there, and on MySQL/MariaDB the"
            " revision's earlier DDL stays applied",
            "fix those rows first (the query in the finding lists them), in batches, in a"
            " revision before this one or by hand; or change the operation",
        ),
        Rule(
            "mysql-table-copy",
            "the server cannot run this ALTER with ALGORITHM=INSTANT nor with"
            " ALGORITHM=INPLACE, LOCK=NONE: it copies the table and blocks writes for the"
            " whole copy",
            "use an operation the server runs online (add a column instead of changing one,"
            " expand/contract), or an online schema change tool (pt-online-schema-change,"
            " gh-ost) for big tables",
            ("mysql",),
        ),
        Rule(
            "create-index-not-concurrently",
            "CREATE INDEX takes a SHARE lock: every INSERT, UPDATE and DELETE of the table"
            " waits until the whole index is built",
            "op.create_index(..., postgresql_concurrently=True) inside"
            " 'with op.get_context().autocommit_block():'",
            ("postgresql",),
        ),
        Rule(
            "add-foreign-key-not-valid",
            "ADD FOREIGN KEY scans the whole table under a SHARE ROW EXCLUSIVE lock on both"
            " tables: writes to either wait for the scan",
            "op.create_foreign_key(..., postgresql_not_valid=True), then in another"
            " transaction op.execute('ALTER TABLE ... VALIDATE CONSTRAINT ...') (which lets"
            " writes through)",
            ("postgresql",),
        ),
        Rule(
            "add-check-not-valid",
            "ADD CHECK scans the whole table under an ACCESS EXCLUSIVE lock: reads and writes"
            " wait for the scan",
            "add it with NOT VALID, then VALIDATE CONSTRAINT in another transaction",
            ("postgresql",),
        ),
        Rule(
            "set-not-null",
            "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock: reads and"
            " writes wait for the scan",
            "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it in another"
            " transaction, then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the check",
            ("postgresql",),
        ),
        Rule(
            "volatile-default",
            "a volatile default (clock_timestamp(), random(), gen_random_uuid()) rewrites the"
            " whole table under an ACCESS EXCLUSIVE lock: reads and writes wait for it",
            "add the column without a default (or with a constant one), set the default"
            " with ALTER COLUMN SET DEFAULT, and backfill old rows in batches",
            ("postgresql",),
        ),
        Rule(
            "no-lock-timeout",
            "DDL waiting for its lock (behind any open transaction on the table) queues every"
            " later query of the table behind it: the app stalls for as long as that"
            " transaction stays open",
            "keep ENTITYDB_MIGRATION_LOCK_TIMEOUT set (default 1 second): the DDL fails fast"
            " instead, and 'flask db upgrade' can be retried",
            ("mysql", "postgresql"),
        ),
    )
}


def _describe_column(column: Any) -> str:
    return f"'{column.name}'"


def describe(operation: ops.MigrateOperation) -> str:
    """A short ``op.<name>(...)`` rendering of an operation for reports."""
    table = getattr(operation, "table_name", None) or getattr(operation, "source_table", None)
    if isinstance(operation, ops.AddColumnOp):
        column = operation.column
        null = "" if column.nullable else ", nullable=False"
        return f"op.add_column('{table}', {column.name} {type_text(column.type)}{null})"
    if isinstance(operation, ops.DropColumnOp):
        return f"op.drop_column('{table}', '{operation.column_name}')"
    if isinstance(operation, ops.AlterColumnOp):
        changes = []
        if operation.modify_type is not None:
            changes.append(f"type_={type_text(operation.modify_type)}")
        if operation.modify_name is not None:
            changes.append(f"new_column_name='{operation.modify_name}'")
        if operation.modify_nullable is not None:
            changes.append(f"nullable={operation.modify_nullable}")
        if operation.modify_server_default is not False:
            changes.append("server_default=...")
        joined = ", ".join(changes)
        return f"op.alter_column('{table}', '{operation.column_name}', {joined})"
    if isinstance(operation, ops.ExecuteSQLOp):
        text = " ".join(sql_text(operation).split())
        return f"op.execute({text[:70] + '...' if len(text) > 70 else text!r})"
    if isinstance(operation, ops.RenameTableOp):
        return f"op.rename_table('{table}', '{operation.new_table_name}')"
    if isinstance(operation, ops.CreateIndexOp):
        return f"op.create_index('{operation.index_name}', '{table}', ...)"
    name = type(operation).__name__.removesuffix("Op")
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return f"op.{snake}('{table}', ...)" if table else f"op.{snake}(...)"


def type_text(type_: Any) -> str:
    """A column type as a report shows it: SQL for plain types (``VARCHAR(256)``), the
    values for an enum (``Enum('active', 'banned', name='user_status')``), which the
    generic SQL rendering would show as the ``VARCHAR`` of a non-native enum."""
    if isinstance(type_, sa.Enum):
        values = ", ".join(repr(value) for value in type_.enums)
        name = f", name={type_.name!r}" if type_.name else ""
        return f"Enum({values}{name})"
    try:
        return str(type_)
    except CompileError:
        return repr(type_)


def sql_text(operation: ops.ExecuteSQLOp, dialect: Any = None) -> str:
    """The SQL of an ``op.execute()``: the string, or the construct compiled."""
    sqltext = operation.sqltext
    if isinstance(sqltext, str):
        return sqltext
    if isinstance(sqltext, TextClause):
        return sqltext.text
    if isinstance(sqltext, ExecutableDDLElement):
        # DDL (for example the enum plugin's CREATE TYPE) compiles only for its dialect,
        # and is never a data migration
        try:
            return str(sqltext.compile(dialect=dialect))
        except (AttributeError, CompileError):
            return type(sqltext).__name__
    if isinstance(sqltext, ClauseElement):
        try:
            return str(sqltext.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        except CompileError:  # values of untyped sa.column()s: shown as parameters
            return str(sqltext.compile(dialect=dialect))
    return str(sqltext)


def _existing_table(item: Recorded) -> bool:
    return not item.new_table


def check_generic(item: Recorded, backend: str, type_change: bool = True) -> list[str]:
    """The every-backend rules an operation breaks.

    :param type_change: apply ``alter-column-type`` (off where the server decides it).
    """
    operation = item.operation
    found: list[str] = []
    if isinstance(operation, ops.DropTableOp) and _existing_table(item):
        found.append("drop-table")
    elif isinstance(operation, ops.RenameTableOp) and _existing_table(item):
        found.append("rename-table")
    elif isinstance(operation, ops.DropColumnOp) and _existing_table(item) and not item.new_column:
        found.append("drop-column")
    elif isinstance(operation, ops.AddColumnOp) and _existing_table(item):
        column = operation.column
        if (
            not column.nullable
            and column.server_default is None
            and column.computed is None
            and column.identity is None
        ):
            found.append("add-not-null-column")
    elif isinstance(operation, ops.AlterColumnOp) and _existing_table(item) and not item.new_column:
        if operation.modify_name is not None:
            found.append("rename-column")
        if type_change and operation.modify_type is not None:
            found.append("alter-column-type")
    return found
