"""MariaDB: what ``flask db lint`` says about the operations the server runs online.

MariaDB's algorithms are ``INSTANT`` < ``NOCOPY`` < ``INPLACE`` < ``COPY``. ``NOCOPY``
changes the table in place without rebuilding it (a new index is built beside the rows);
an operation the server runs ``INPLACE`` but refuses ``NOCOPY`` rebuilds the table in
place (``MODIFY ... NOT NULL``, a new primary key). Writes go on during both (``LOCK=NONE``),
so neither is a hazard; a rebuild takes time and disk space in proportion to the table,
and replicas apply it after it ends, so lint says roughly how long from the table's size
in the app's database (``information_schema.TABLES``) and :data:`REBUILD_BYTES_PER_SECOND`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sqlalchemy as sa
from alembic.operations import ops

from flask_entitydb.migrations._connections import closed_after
from flask_entitydb.migrations._lint.mysql import OnlineRun
from flask_entitydb.migrations._lint.record import Recorded, raw_sql
from flask_entitydb.migrations._lint.results import OnlineVerdict
from flask_entitydb.migrations._lint.rules import describe
from flask_entitydb.migrations._lint.sqltext import target_table

REBUILD_BYTES_PER_SECOND = 20_000_000
"""How fast MariaDB rebuilds a table in place (``ALGORITHM=INPLACE``), in bytes of data
and indexes per second: 21 to 24 MB/s measured on this project's 2-core machine under load
with MariaDB 10.11 (``python benchmarks/rebuild_rate_bench.py --rounds 3``; about 100 MB/s
when idle), rounded down; see docs/safe-migrations.md. A rough figure that leans long: a
server's disks, load and indexes change it several-fold."""


@dataclass(frozen=True)
class TableSize:
    """The server's estimate of a table's rows and bytes (data and indexes)."""

    rows: int
    bytes: int

    def rebuild_seconds(self) -> float:
        """Roughly how long an in-place rebuild takes at :data:`REBUILD_BYTES_PER_SECOND`."""
        return self.bytes / REBUILD_BYTES_PER_SECOND


def operation_table(item: Recorded) -> str | None:
    """The table an operation changes (a raw ``ALTER TABLE``'s too), if it names one."""
    operation = item.operation
    if isinstance(operation, ops.ExecuteSQLOp):
        sql = raw_sql(operation)
        return None if sql is None else target_table(sql)
    table = getattr(operation, "table_name", None)
    return table if isinstance(table, str) else None


def table_size(connection: sa.Connection, table: str) -> TableSize | None:
    """The size of ``table`` in the connection's database, or ``None`` when it has none."""
    found = connection.execute(
        sa.text(
            "SELECT TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
        ),
        {"t": table},
    ).first()
    if found is None:
        return None
    rows, data, index = (int(value or 0) for value in found)
    return TableSize(rows, data + index)


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def online_verdicts(runs: list[OnlineRun], engine: sa.Engine) -> list[OnlineVerdict]:
    """MariaDB: the linted operations the server runs ``NOCOPY`` (no rebuild) or
    ``INPLACE`` (a rebuild in place, with a rough time from the table's size in the app's
    database)."""
    chosen = [run for run in runs if run.algorithm in ("NOCOPY", "INPLACE")]
    if not chosen:
        return []
    sizes: dict[str, TableSize | None] = {}
    try:
        with closed_after(engine) as connection:
            for run in chosen:
                table = operation_table(run.item)
                if table is not None and table not in sizes:
                    sizes[table] = table_size(connection, table)
    except sa.exc.DBAPIError:
        pass  # no estimate; the other checks say why the database cannot be read
    return [_verdict(run, sizes) for run in chosen]


def _verdict(run: OnlineRun, sizes: dict[str, TableSize | None]) -> OnlineVerdict:
    item, table = run.item, operation_table(run.item)
    operation = describe(item.operation)
    where = f"revision '{item.revision}' line {item.line} ({operation})"
    name = f"'{table}'" if table else "its table"
    verdict = OnlineVerdict(item.revision, item.line, operation, table, run.algorithm, False)
    if run.algorithm == "NOCOPY":
        message = (
            f"{where}: MariaDB runs it with ALGORITHM=NOCOPY, in place without rebuilding"
            f" {name}; writes go on"
        )
        return replace(verdict, message=message)
    size = sizes.get(table) if table else None
    if size is None:
        how_long = "a time that grows with its size (the database lint reads does not hold it)"
        seconds = None
    else:
        seconds = size.rebuild_seconds()
        how_long = (
            f"{_duration(seconds)} for the {size.rows} rows ({size.bytes / 1e6:.1f} MB) the"
            f" database holds there, at the {REBUILD_BYTES_PER_SECOND / 1e6:.0f} MB/s"
            " measured in docs/safe-migrations.md"
        )
    message = (
        f"{where}: MariaDB runs it with ALGORITHM=INPLACE, LOCK=NONE but not NOCOPY, so it"
        f" rebuilds {name}: writes go on, but it takes {how_long}; replicas apply it after"
        " it ends, lagging as long"
    )
    return replace(
        verdict,
        rebuilds=True,
        rows=None if size is None else size.rows,
        megabytes=None if size is None else round(size.bytes / 1e6, 1),
        seconds=None if seconds is None else round(seconds, 1),
        message=message,
    )
