"""``flask db migrate`` on MySQL/MariaDB states the online algorithm of each operation on
an existing table, as the server decides it.

A scratch database is built on the app's server from the recorded revisions (as
``flask db lint`` does, :mod:`~flask_entitydb.migrations._lint.mysql`, whose scratch
database, recorder and judging it uses), then the new revision's operations are run on it,
each ``ALTER TABLE`` / ``CREATE INDEX`` / ``DROP INDEX`` with ``ALGORITHM=INSTANT``, else
(MariaDB only) ``ALGORITHM=NOCOPY, LOCK=NONE``, else ``ALGORITHM=INPLACE, LOCK=NONE``. The
operations the server accepts are written in ``with online_ddl(op, "INSTANT"):`` (or
``"NOCOPY"``, ``"INPLACE"``) blocks, a MariaDB ``"INPLACE"`` one with a comment that it
rebuilds the table; those it refuses all are written as they are (the table is copied;
``flask db lint`` reports it). When the check
cannot be made, nothing is marked and a warning says why.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.operations import ops
from alembic.script import ScriptDirectory

from flask_entitydb.migrations._server_facts import MYSQL

if TYPE_CHECKING:
    from flask_entitydb.migrations._lint.record import RecordedRevision
    from flask_entitydb.migrations._lint.scratch import Seed

log = logging.getLogger("flask_entitydb")

IMPORT = "from flask_entitydb.migrations import online_ddl"


class OnlineDDLOp(ops.OpContainer):
    """Operations run with an algorithm clause. Rendered as
    ``with online_ddl(op, "INSTANT"):`` and the operations."""

    def __init__(
        self, algorithm: str, operations: list[ops.MigrateOperation], rebuilds: bool = False
    ) -> None:
        super().__init__(operations)
        self.algorithm = algorithm
        self.rebuilds = rebuilds
        """MariaDB runs it ``INPLACE`` but not ``NOCOPY``: it rebuilds the table."""


REBUILD_COMMENT = "# MariaDB rebuilds the table in place ('flask db lint' says how long)"


def _render(autogen_context: Any, op: OnlineDDLOp) -> list[str]:
    from alembic.autogenerate.render import render_op

    autogen_context.imports.add(IMPORT)
    lines = [REBUILD_COMMENT] if op.rebuilds else []
    lines.append(f'with online_ddl(op, "{op.algorithm}"):')
    for inner in op.ops:
        lines += render_op(autogen_context, inner)
    return [*lines, ""]


def register_renderer() -> None:
    """Teach Alembic to render :class:`OnlineDDLOp`."""
    from alembic.autogenerate import renderers

    renderers.dispatch_for(OnlineDDLOp, replace=True)(_render)


class _NotJudged(Exception):
    """The server could not judge the operations (the message says why)."""


def online_algorithms(context: Any, revision: Any, directives: list[Any]) -> None:
    """``process_revision_directives`` hook: on MySQL/MariaDB, put each operation of the
    new revision (upgrade and downgrade) on an existing table in an ``online_ddl`` block
    with the strongest algorithm the server runs it with."""
    if context.dialect.name not in MYSQL or context.connection is None:
        return
    steps = [  # in the order they run: the upgrade, then the downgrade back
        container
        for script in directives
        if isinstance(script, ops.MigrationScript)
        for container in [*script.upgrade_ops_list, *script.downgrade_ops_list]
        if container.ops
    ]
    mariadb = bool(getattr(context.connection.dialect, "is_mariadb", False))
    if not steps or not _judgeable(context.connection.engine.url, mariadb, steps):
        return
    try:
        algorithms = _judge(context, revision, steps)
    except _NotJudged as error:
        log.warning(
            "The new revision states no online algorithm (online_ddl): %s; 'flask db lint'"
            " says which operations copy the table.",
            error,
        )
        return
    for container in steps:
        container.ops = _marked(container.ops, algorithms, mariadb)


def _operations(container: ops.OpContainer) -> list[tuple[ops.MigrateOperation, bool]]:
    """Every operation of ``container`` in order, with whether its table existed before."""
    created = {
        (op.schema, op.table_name) for op in container.ops if isinstance(op, ops.CreateTableOp)
    }
    found: list[tuple[ops.MigrateOperation, bool]] = []
    for op in container.ops:
        inner = op.ops if isinstance(op, ops.ModifyTableOps) else [op]
        table = getattr(op, "table_name", None)
        existing = table is not None and (getattr(op, "schema", None), table) not in created
        found += [(item, existing) for item in inner]
    return found


def _judgeable(url: sa.URL, mariadb: bool, steps: list[Any]) -> bool:
    """Whether an operation of ``steps`` on an existing table takes an algorithm clause:
    else no block could be written, and no scratch database is built (a revision that
    only creates tables, say)."""
    from flask_entitydb.migrations._lint.record import OnlineForms

    forms = OnlineForms(url, mariadb)
    try:
        return any(
            existing and forms.render(op)
            for container in steps
            for op, existing in _operations(container)
        )
    except ValueError:  # an operation Alembic cannot render: _judge says so
        return True


def _judge(context: Any, heads: Any, steps: list[Any]) -> dict[int, str | None]:
    """The algorithm of each operation (by ``id``) of ``steps`` (upgrade and downgrade
    containers, run in this order) on tables that exist before its step."""
    # the lint machinery (and MySQL's dialect): only when a revision is judged
    from flask_entitydb.migrations._lint.memo import Recording, keep, recorder
    from flask_entitydb.migrations._lint.mysql import run_judged, weakest
    from flask_entitydb.migrations._lint.record import OnlineForms
    from flask_entitydb.migrations._lint.scratch import scratch_database, server_message

    url: sa.URL = context.connection.engine.url
    mariadb = bool(getattr(context.connection.dialect, "is_mariadb", False))
    recorded, seed = _start(context, heads, steps, mariadb)
    forms = OnlineForms(url, mariadb)
    algorithms: dict[int, str | None] = {}
    # kept for the lint of the written revision, which runs the same statements
    record = recorder(url, seed.tables) if seed is not None else None
    try:
        with (
            scratch_database(url, seed, replays=len(recorded)) as engine,
            engine.connect() as scratch,
        ):
            connection = scratch if record is None else Recording(scratch, record)
            for revision in recorded:
                for item in revision.operations:
                    run_judged(connection, item.statements, {})
            for container in steps:
                for op, existing in _operations(container):
                    statements = _as_written(op, forms.statements(op))
                    online = forms.render(op) if existing else {}
                    online = {key: _as_written(op, value) for key, value in online.items()}
                    verdicts = run_judged(connection, statements, online)
                    if online:
                        algorithms[id(op)] = weakest(verdicts)
            keep(record, scratch.dialect)
    except sa.exc.DBAPIError as error:
        raise _NotJudged(f"the server check failed ({server_message(error, url)})") from None
    except ValueError as error:  # an operation Alembic cannot run (a plugin's)
        raise _NotJudged(f"an operation could not be rendered ({error})") from None
    return algorithms


def _start(
    context: Any, heads: Any, steps: list[Any], mariadb: bool
) -> tuple[list[RecordedRevision], Seed | None]:
    """Where the scratch database starts: the live database's schema of the tables the
    new operations touch when it is at the new revision's parents (as autogenerate
    requires), else every revision up to them, replayed (with a warning saying so)."""
    from flask_entitydb.migrations._lint.record import record
    from flask_entitydb.migrations._lint.scratch import Seed, replay_notice, touched_tables

    heads = tuple(heads or ())
    if set(context.get_current_heads()) == set(heads):
        operations = [op for container in steps for op in container.ops]
        return [], Seed(context.connection, touched_tables(operations))
    script = context.script or ScriptDirectory.from_config(context.environment_context.config)
    order = list(reversed(list(script.iterate_revisions(heads, "base")))) if heads else []
    recorded = record(order, context.connection.engine.url, mariadb)
    for revision in recorded:
        if revision.error is not None:
            raise _NotJudged(
                f"revision '{revision.script.revision}' could not be read without a database"
            )
    log.warning(
        "%s.",
        replay_notice(len(recorded), "the database is not at the new revision's parents"),
    )
    return recorded, None


def _as_written(op: ops.MigrateOperation, statements: list[str]) -> list[str]:
    """The statements of ``op`` as the revision file runs them. Autogenerate's
    ``add_column`` and ``create_table`` operations hold the entity's own columns, whose
    indexes, unique constraints and foreign keys Alembic would also create with them;
    the file has those as operations of their own (its columns are written without them),
    so only the first statement, ``ALTER TABLE ... ADD`` / ``CREATE TABLE``, is theirs."""
    if isinstance(op, (ops.AddColumnOp, ops.CreateTableOp)):
        return statements[:1]
    return statements


def _marked(
    operations: list[ops.MigrateOperation],
    algorithms: dict[int, str | None],
    mariadb: bool = False,
) -> list[ops.MigrateOperation]:
    """``operations`` with runs of the same algorithm in :class:`OnlineDDLOp` blocks (a
    table's batch block split where the algorithm changes; on MariaDB an ``INPLACE`` block
    rebuilds the table)."""

    def block(algorithm: str, inner: ops.MigrateOperation) -> OnlineDDLOp:
        return OnlineDDLOp(algorithm, [inner], rebuilds=mariadb and algorithm == "INPLACE")

    result: list[ops.MigrateOperation] = []
    for op in operations:
        if not isinstance(op, ops.ModifyTableOps):
            algorithm = algorithms.get(id(op))
            result.append(op if algorithm is None else block(algorithm, op))
            continue
        groups = [
            (algorithm, list(group))
            for algorithm, group in itertools.groupby(op.ops, key=lambda o: algorithms.get(id(o)))
        ]
        for algorithm, group in groups:
            part = op
            if len(groups) > 1:
                part = ops.ModifyTableOps(op.table_name, group, schema=op.schema)
            result.append(part if algorithm is None else block(algorithm, part))
    return result
