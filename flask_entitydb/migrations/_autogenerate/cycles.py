"""Foreign keys between tables that reference each other, made portable: ``flask db
migrate`` takes out of ``op.create_table(...)`` each foreign key marked ``use_alter=True``
and each one that references a table the revision creates later (a cycle such as
``teams.captain_id -> players`` and ``players.team_id -> teams``), and creates them after
every table exists, in ``batch_alter_table`` blocks (plain ``ALTER TABLE ... ADD
CONSTRAINT`` on MariaDB/MySQL and PostgreSQL; the table is rebuilt on SQLite). The
downgrade drops them before the tables.

Without this, ``CREATE TABLE`` skips a ``use_alter`` key on every backend (it expects
``metadata.create_all`` to add it later), and a key to a table not created yet fails on
MariaDB (errno 150), so a revision made on SQLite did not create the same schema elsewhere.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

__all__ = ["cycles_sorted_later", "deferred_foreign_keys"]


def _deferred(create: ops.CreateTableOp, later: set[tuple[str | None, str]]) -> list[Any]:
    """The foreign keys of ``create`` to create after every table, taken out of it."""
    taken = []
    for item in list(create.columns):
        if not isinstance(item, sa.ForeignKeyConstraint):
            continue
        target = item.elements[0].target_fullname.rpartition(".")[0]
        schema, _, table = target.rpartition(".")
        if item.use_alter or ((schema or create.schema), table) in later:
            taken.append(item)
    if taken:
        ids = {id(item) for item in taken}  # by identity: '==' builds SQL expressions
        create.columns = [item for item in create.columns if id(item) not in ids]
    return taken


def deferred_foreign_keys(context: Any, revision: Any, directives: list[Any]) -> None:
    """``process_revision_directives`` hook: create the foreign keys of tables that
    reference each other (or marked ``use_alter``) after the tables, drop them first."""
    for script in directives:
        for upgrade, downgrade in zip(
            script.upgrade_ops_list, script.downgrade_ops_list, strict=True
        ):
            creates = [op for op in upgrade.ops if isinstance(op, ops.CreateTableOp)]
            pending = {(op.schema, op.table_name) for op in creates}
            added: list[ops.ModifyTableOps] = []
            dropped: list[ops.ModifyTableOps] = []
            for create in creates:
                pending.discard((create.schema, create.table_name))
                taken = _deferred(create, pending)
                if not taken:
                    continue
                constraints = [ops.CreateForeignKeyOp.from_constraint(fk) for fk in taken]
                for fk_op in constraints:
                    if fk_op.constraint_name is None:
                        fk_op.constraint_name = sa.sql.elements.conv(
                            _name(create.table_name, fk_op)
                        )
                added.append(
                    ops.ModifyTableOps(create.table_name, constraints, schema=create.schema)
                )
                dropped.append(
                    ops.ModifyTableOps(
                        create.table_name,
                        [
                            ops.DropConstraintOp(
                                fk.constraint_name,
                                create.table_name,
                                "foreignkey",
                                schema=create.schema,
                            )
                            for fk in constraints
                        ],
                        schema=create.schema,
                    )
                )
            if added:
                upgrade.ops = [*upgrade.ops, *added]
                downgrade.ops = [*dropped, *downgrade.ops]


def _name(table: str, fk_op: Any) -> str:
    """A name for a foreign key the metadata left unnamed (``DROP CONSTRAINT`` and
    SQLite's batch mode need one), as flask-entitydb's naming convention names it."""
    return f"fk_{table}_{'_'.join(fk_op.local_cols)}_{fk_op.referent_table}"


@contextlib.contextmanager
def cycles_sorted_later() -> Iterator[None]:
    """While autogenerate runs, no warning that tables referencing each other cannot be
    sorted: :func:`deferred_foreign_keys` creates those keys after the tables."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Cannot correctly sort tables", category=sa.exc.SAWarning
        )
        yield
