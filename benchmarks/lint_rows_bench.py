"""How long an ``UPDATE`` of N rows holds its row locks, on MariaDB and PostgreSQL: the
figures behind ``ENTITYDB_LINT_MAX_ROWS`` (the default of ``flask db lint``'s
``data-migration`` rule, docs/safe-migrations.md).

A table of ``--table-rows`` rows; each case updates the first N rows by primary key range
in one transaction and commits (a concurrent writer of those rows waits that long). Cases
run in interleaved rounds; medians are reported.

    python benchmarks/lint_rows_bench.py [--rounds 5] [--table-rows 200000]
"""

from __future__ import annotations

import argparse
import time
import uuid

import sqlalchemy as sa
from _harness import interleave, machine_report, markdown_table, say

SIZES = (1_000, 10_000, 50_000, 200_000)
FILL = {
    "mysql": "INSERT INTO big SELECT seq, seq, 0 FROM seq_1_to_{rows}",
    "postgresql": "INSERT INTO big SELECT g, g, 0 FROM generate_series(1, {rows}) AS g",
}


def _database(base: str, backend: str, rows: int) -> tuple[sa.Engine, sa.Engine, str]:
    name = f"edb_lintbench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = sa.create_engine(sa.make_url(base).set(database=name), poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE big (id integer PRIMARY KEY, a integer, c integer)"
        )
        connection.exec_driver_sql(FILL[backend].format(rows=rows))
    return admin, engine, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--table-rows", type=int, default=200_000)
    parser.add_argument("--mysql-url", default="mysql+mysqldb://root@127.0.0.1:3306/mysql")
    parser.add_argument(
        "--postgresql-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    print("\n".join(machine_report()))
    table = []
    for backend, base in (("mysql", args.mysql_url), ("postgresql", args.postgresql_url)):
        admin, engine, name = _database(base, backend, args.table_rows)
        try:
            with engine.connect() as connection:

                def case(rows: int, connection: sa.Connection = connection) -> float:
                    started = time.perf_counter()
                    connection.exec_driver_sql(f"UPDATE big SET c = c + 1 WHERE id <= {rows}")
                    connection.commit()
                    return time.perf_counter() - started

                cases = {str(rows): (lambda rows=rows: case(rows)) for rows in SIZES}
                results = interleave(cases, args.rounds, progress=say)
            table.append([backend, *(f"{results.median(str(r)):.3f} s" for r in SIZES)])
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.exec_driver_sql(f"DROP DATABASE {name}")
            admin.dispose()
    print()
    print(markdown_table(["server", *(f"{rows:,} rows" for rows in SIZES)], table))


if __name__ == "__main__":
    main()
