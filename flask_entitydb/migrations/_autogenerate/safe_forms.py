"""``flask db migrate`` writes the online form of an operation where one exists with the
same meaning: on PostgreSQL, an index on an existing table is built ``CONCURRENTLY``, in
``op.get_context().autocommit_block()`` (``CREATE INDEX CONCURRENTLY`` cannot run in a
transaction), so writers are not blocked while it is built (see docs/safe-migrations.md).
"""

from __future__ import annotations

from typing import Any

from alembic.operations import ops


class ConcurrentIndexesOp(ops.OpContainer):
    """Index creations run outside the migration's transaction, concurrently. Rendered as
    ``with op.get_context().autocommit_block():`` and the ``op.create_index(...)`` calls."""


def _render(autogen_context: Any, op: ConcurrentIndexesOp) -> list[str]:
    from alembic.autogenerate.render import render_op

    lines = ["with op.get_context().autocommit_block():"]
    for index in op.ops:
        lines += render_op(autogen_context, index)
    return [*lines, ""]


def register_renderer() -> None:
    """Teach Alembic to render :class:`ConcurrentIndexesOp`."""
    from alembic.autogenerate import renderers

    renderers.dispatch_for(ConcurrentIndexesOp, replace=True)(_render)


def concurrent_indexes(context: Any, revision: Any, directives: list[Any]) -> None:
    """``process_revision_directives`` hook: on PostgreSQL, move each new index of a table
    that already exists out of the transaction and make it concurrent. Indexes of tables
    the same revision creates stay as they are (an empty table blocks nobody)."""
    if context.dialect.name != "postgresql":
        return
    for script in directives:
        for upgrade in script.upgrade_ops_list:
            created = {
                (op.schema, op.table_name)
                for op in upgrade.ops
                if isinstance(op, ops.CreateTableOp)
            }
            result: list[ops.MigrateOperation] = []
            for op in upgrade.ops:
                moved = _take_indexes(op, created)
                if not (isinstance(op, ops.OpContainer) and op.is_empty()) and op not in moved:
                    result.append(op)
                if moved:
                    for index in moved:
                        index.kw["postgresql_concurrently"] = True
                    result.append(ConcurrentIndexesOp(moved))
            upgrade.ops = result


def _take_indexes(
    op: ops.MigrateOperation, created: set[tuple[str | None, str]]
) -> list[ops.CreateIndexOp]:
    """The index creations of ``op`` on existing tables, removed from its group."""
    if isinstance(op, ops.CreateIndexOp):
        return [] if (op.schema, op.table_name) in created else [op]
    if not isinstance(op, ops.ModifyTableOps) or (op.schema, op.table_name) in created:
        return []
    taken = [inner for inner in op.ops if isinstance(inner, ops.CreateIndexOp)]
    op.ops = [inner for inner in op.ops if not isinstance(inner, ops.CreateIndexOp)]
    return taken
