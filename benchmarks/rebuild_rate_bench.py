"""How fast MariaDB rebuilds a table in place (``ALGORITHM=INPLACE`` that is not
``NOCOPY``), in MB of data and indexes per second: the figure behind ``flask db lint``'s
rebuild estimate (``REBUILD_BYTES_PER_SECOND``, docs/safe-migrations.md).

Tables of each size (an id, two integers, a 32-character string, one secondary index);
each case rebuilds one with ``ALTER TABLE ... FORCE, ALGORITHM=INPLACE, LOCK=NONE`` (the
rebuild a ``MODIFY ... NOT NULL`` or a new primary key does) and divides the table's
``DATA_LENGTH + INDEX_LENGTH`` by the time. Cases run in interleaved rounds; medians are
reported.

    python benchmarks/rebuild_rate_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
import uuid

import sqlalchemy as sa
from _harness import interleave, machine_report, markdown_table, say

SIZES = (100_000, 400_000, 1_000_000)


def _table(connection: sa.Connection, rows: int) -> int:
    """Create and fill ``t<rows>``; its size in bytes (data and indexes)."""
    name = f"t{rows}"
    connection.exec_driver_sql(
        f"CREATE TABLE {name} (id integer PRIMARY KEY, a integer NOT NULL, c integer,"
        " s varchar(40), KEY ix_a (a)) ENGINE=InnoDB"
    )
    connection.exec_driver_sql(
        f"INSERT INTO {name} SELECT seq, seq, seq, MD5(seq) FROM seq_1_to_{rows}"
    )
    connection.exec_driver_sql(f"ANALYZE TABLE {name}")
    size = connection.exec_driver_sql(
        "SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{name}'"
    ).scalar_one()
    return int(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mysql-url", default="mysql+mysqldb://root@127.0.0.1:3306/mysql")
    args = parser.parse_args()
    print("\n".join(machine_report()))
    name = f"edb_rebuildbench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.mysql_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = sa.create_engine(
        sa.make_url(args.mysql_url).set(database=name),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
    )
    try:
        with engine.connect() as connection:
            version = connection.exec_driver_sql("SELECT VERSION()").scalar_one()
            sizes = {rows: _table(connection, rows) for rows in SIZES}

            def case(rows: int, connection: sa.Connection = connection) -> float:
                started = time.perf_counter()
                connection.exec_driver_sql(
                    f"ALTER TABLE t{rows} FORCE, ALGORITHM=INPLACE, LOCK=NONE"
                )
                return time.perf_counter() - started

            cases = {str(rows): (lambda rows=rows: case(rows)) for rows in SIZES}
            results = interleave(cases, args.rounds, progress=say)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()
    table = []
    for rows in SIZES:
        seconds = results.median(str(rows))
        megabytes = sizes[rows] / 1e6
        table.append(
            [f"{rows:,}", f"{megabytes:.1f} MB", f"{seconds:.3f} s", f"{megabytes / seconds:.0f}"]
        )
    print(f"\n{version}\n")
    print(markdown_table(["rows", "data + indexes", "rebuild (median)", "MB/s"], table))


if __name__ == "__main__":
    main()
