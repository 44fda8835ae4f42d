"""Autogenerate's operations, described in words for people.

``flask db migrate`` lists what it found, and calls out every table and column drop, so
nobody ships a drop without noticing; ``flask db check`` lists the differences.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.operations import ops


def _quoted(*parts: object) -> str:
    return "'" + ".".join(str(part) for part in parts if part is not None) + "'"


def _type(type_: Any, dialect: sa.Dialect | None) -> str:
    if dialect is not None:
        try:
            return str(type_.compile(dialect=dialect))
        except Exception:  # a type the dialect cannot render: fall back to its repr
            pass
    return repr(type_)


def _default(value: Any) -> str:
    if value is None or value is False:
        return "none"
    arg = getattr(value, "arg", value)
    return repr(getattr(arg, "text", arg))


def _alter(op: ops.AlterColumnOp, dialect: sa.Dialect | None) -> str:
    what: list[str] = []
    if op.modify_name is not None:
        what.append(f"renamed to '{op.modify_name}'")
    if op.modify_type is not None:
        before = _type(op.existing_type, dialect) if op.existing_type is not None else "?"
        what.append(f"type {before} -> {_type(op.modify_type, dialect)}")
    if op.modify_nullable is not None:
        what.append("now nullable" if op.modify_nullable else "now NOT NULL")
    if op.modify_server_default is not False:
        before = _default(op.existing_server_default)
        what.append(f"server default {before} -> {_default(op.modify_server_default)}")
    if op.modify_comment is not False:
        what.append("comment changed")
    column = _quoted(op.schema, op.table_name, op.column_name)
    return f"change column {column}: {', '.join(what) or 'options changed'}"


def _constraint_table(op: ops.MigrateOperation) -> str | None:
    return getattr(op, "table_name", None) or getattr(op, "source_table", None)


def _fallback(op: ops.MigrateOperation) -> str:
    """Alembic's own rendering of an operation it (or a plugin) knows, as one line."""
    try:
        code = render_python_code(ops.UpgradeOps(ops=[op]))
    except Exception:  # an operation without a renderer
        return type(op).__name__
    lines = [line.strip() for line in code.splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("#"))


def describe(op: ops.MigrateOperation, dialect: sa.Dialect | None = None) -> str:
    """One operation in words, for example ``add column 'users.email'``."""
    name = type(op).__name__
    if isinstance(op, ops.CreateTableOp):
        return f"add table {_quoted(op.schema, op.table_name)}"
    if isinstance(op, ops.DropTableOp):
        return f"drop table {_quoted(op.schema, op.table_name)}"
    if isinstance(op, ops.RenameTableOp):
        return f"rename table {_quoted(op.schema, op.table_name)} to '{op.new_table_name}'"
    if isinstance(op, ops.AddColumnOp):
        return f"add column {_quoted(op.schema, op.table_name, op.column.name)}"
    if isinstance(op, ops.DropColumnOp):
        return f"drop column {_quoted(op.schema, op.table_name, op.column_name)}"
    if isinstance(op, ops.AlterColumnOp):
        return _alter(op, dialect)
    if isinstance(op, ops.CreateIndexOp):
        return f"add index '{op.index_name}' on {_quoted(op.schema, op.table_name)}"
    if isinstance(op, ops.DropIndexOp):
        return f"drop index '{op.index_name}' on {_quoted(op.schema, op.table_name)}"
    if isinstance(op, ops.AddConstraintOp):
        kind = op.constraint_type.replace("_", " ").replace("foreignkey", "foreign key")
        table = _quoted(getattr(op, "schema", None), _constraint_table(op))
        return f"add {kind} constraint '{getattr(op, 'constraint_name', None)}' on {table}"
    if isinstance(op, ops.DropConstraintOp):
        kind = (op.constraint_type or "").replace("foreignkey", "foreign key")
        table = _quoted(op.schema, op.table_name)
        return f"drop {kind} constraint '{op.constraint_name}' on {table}".replace("  ", " ")
    if isinstance(op, (ops.CreateTableCommentOp, ops.DropTableCommentOp)):
        return f"change the comment of table {_quoted(op.schema, op.table_name)}"
    # alembic-postgresql-enum's operations
    if name == "CreateEnumOp":
        return f"add enum type {_quoted(op.schema, op.name)}"  # type: ignore[attr-defined]
    if name == "DropEnumOp":
        return f"drop enum type {_quoted(op.schema, op.name)}"  # type: ignore[attr-defined]
    if name == "AddEnumValuesOp":
        enum = _quoted(op.schema, op.name)  # type: ignore[attr-defined]
        old_values = set(op.old_values)  # type: ignore[attr-defined]
        added = [value for value in op.new_values if value not in old_values]  # type: ignore[attr-defined]
        values = ", ".join(f"'{value}'" for value in added)
        return f"add value{'s' if len(added) > 1 else ''} {values} to enum type {enum}"
    if name == "SyncEnumValuesOp":
        enum = _quoted(op.schema, op.name)  # type: ignore[attr-defined]
        before = ", ".join(op.old_values)  # type: ignore[attr-defined]
        after = ", ".join(op.new_values)  # type: ignore[attr-defined]
        return f"change the values of enum type {enum}: [{before}] -> [{after}]"
    return _fallback(op)


def flatten(operations: Iterable[ops.MigrateOperation]) -> Iterator[ops.MigrateOperation]:
    """Every operation, with the per-table groups (``ModifyTableOps``) opened."""
    for op in operations:
        if isinstance(op, ops.OpContainer):
            yield from flatten(op.ops)
        else:
            yield op


def describe_all(
    operations: Iterable[ops.MigrateOperation], dialect: sa.Dialect | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """All operations in words, and separately the table and column drops among them."""
    changes: list[str] = []
    drops: list[str] = []
    for op in flatten(operations):
        text = describe(op, dialect)
        changes.append(text)
        if isinstance(op, (ops.DropTableOp, ops.DropColumnOp)):
            drops.append(text)
    return tuple(changes), tuple(drops)


def summary(changes: tuple[str, ...]) -> str:
    """A revision message made from the changes, for ``migrate`` without ``-m``."""
    if not changes:
        return "empty revision"
    first = changes[0].replace("'", "")
    if len(changes) == 1:
        return first
    more = len(changes) - 1
    return f"{first} and {more} more change{'s' if more > 1 else ''}"
