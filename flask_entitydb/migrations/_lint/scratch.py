"""The scratch database of ``flask db lint`` and ``flask db migrate``'s online-DDL
judgement: an empty database next to the app's, on the same server, where the judged
statements run so the server itself can judge them (:mod:`.mysql`, :mod:`.postgresql`).

It starts from one of two places:

- the live database, when it is at the revision just before the judged operations (a
  :class:`Seed`): the schema of the tables they touch, with their foreign-key
  neighbours, is copied (:mod:`~flask_entitydb.migrations._schema_copy`), so the cost does
  not grow with the number of revisions;
- otherwise the history: every earlier revision's recorded statements are replayed,
  oldest first, and :func:`replay_notice` says so in one line.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.engine import URL

from flask_entitydb._settings.masking import mask_text
from flask_entitydb.migrations._connections import closed_after
from flask_entitydb.migrations._schema_copy import copy_schema, with_neighbours
from flask_entitydb.migrations._slow import slow_step

log = logging.getLogger("flask_entitydb")


@dataclass(frozen=True)
class Seed:
    """Start a scratch database from the live database's schema: ``tables`` (and their
    foreign-key neighbours) of ``source``, or every table when ``tables`` is ``None``."""

    source: sa.Engine | sa.Connection
    tables: frozenset[str] | None


@dataclass
class ScratchCounts:
    """What the scratch databases of this process were built from (read by tests and
    benchmarks: a replay shows as revisions, a copy as tables)."""

    replayed_revisions: int = 0
    copied_tables: int = 0
    databases: int = 0


COUNTS = ScratchCounts()


@contextmanager
def scratch_database(url: URL, seed: Seed | None = None, replays: int = 0) -> Iterator[sa.Engine]:
    """An empty database ``<database>_lint_<random>`` on the server of ``url`` (with the
    tables of ``seed`` copied in), dropped afterwards (the user needs the privilege to
    create databases).

    :param replays: how many revisions the caller replays into it (counted in
        :data:`COUNTS`, and named if the work takes more than a second).
    """
    COUNTS.replayed_revisions += replays
    COUNTS.databases += 1
    step = "judging the operations on a scratch database"
    if replays:
        step = f"replaying {replays} revision(s) into a scratch database and judging"
    name = f"{(url.database or 'app')[:40]}_lint_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote_identifier(name)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
        engine = sa.create_engine(url.set(database=name), poolclass=sa.NullPool)
        try:
            if seed is not None:
                _seed(engine, seed)
            with slow_step(step):
                yield engine
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
    finally:
        admin.dispose()


def _seed(engine: sa.Engine, seed: Seed) -> None:
    with slow_step("copying the tables' schema into the scratch database"):
        if isinstance(seed.source, sa.Connection):
            source_connection = seed.source
            copied = _copy(source_connection, engine, seed.tables)
        else:
            with closed_after(seed.source) as source_connection:
                copied = _copy(source_connection, engine, seed.tables)
    COUNTS.copied_tables += len(copied)
    log.debug("scratch database: %d table(s) copied from the database", len(copied))


def _copy(source: sa.Connection, engine: sa.Engine, tables: frozenset[str] | None) -> list[str]:
    chosen = None if tables is None else with_neighbours(source, tables)
    with engine.connect() as target:
        return copy_schema(source, target, chosen)


def replay_notice(count: int, why: str) -> str:
    """The one line saying the scratch database is built from the history."""
    return f"the scratch database was built by replaying {count} revision(s): {why}"


def _foreign_tables(columns: Iterable[object]) -> set[str]:
    found: set[str] = set()
    for item in columns:
        keys = getattr(item, "foreign_keys", None) or ()
        if isinstance(item, sa.ForeignKeyConstraint):
            keys = item.elements
        for key in keys:
            found.add(str(key.target_fullname).rsplit(".", 2)[-2])
    return found


def touched_tables(operations: Iterable[ops.MigrateOperation]) -> frozenset[str] | None:
    """The tables ``operations`` act on or reference (by foreign key), or ``None`` when
    that cannot be told (raw SQL, an operation of a plugin, another schema)."""
    found: set[str] = set()
    for operation in operations:
        if isinstance(operation, ops.ModifyTableOps):
            inner = touched_tables(operation.ops)
            if inner is None or operation.schema is not None:
                return None
            found |= inner | {operation.table_name}
            continue
        table = getattr(operation, "table_name", None) or getattr(operation, "source_table", None)
        if isinstance(operation, ops.BulkInsertOp) and isinstance(operation.table, sa.Table):
            table = operation.table.name
        if not isinstance(table, str) or getattr(operation, "schema", None) is not None:
            return None
        found.add(table)
        referent = getattr(operation, "referent_table", None)
        if isinstance(referent, str):
            found.add(referent)
        if isinstance(operation, ops.CreateTableOp):
            found |= _foreign_tables(operation.columns)
        if isinstance(operation, ops.AddColumnOp):
            found |= _foreign_tables([operation.column])
    return frozenset(found)


def server_message(error: sa.exc.DBAPIError, url: URL) -> str:
    """The server's error on one line, without the password."""
    message = mask_text(" ".join(str(error.orig).split()))
    if url.password:
        message = message.replace(str(url.password), "***")
    return message
