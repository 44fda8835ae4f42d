"""``flask db lint`` judges data statements by the rows they touch on the app's database
(the server's ``EXPLAIN`` or its estimate of the table's rows), not by the presence of a
``WHERE``: the six revision bodies of issue 27, on the real servers. The writers they block
are measured in test_lint_hazards.py."""

from __future__ import annotations

import json

import pytest
from helpers.migration_apps import AppPackage, ok

from flask_entitydb import ConfigurationError

SERVERS = [
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
]
ROWS = 30_000
"""Rows of 'big': three times the default ENTITYDB_LINT_MAX_ROWS."""

TABLES = """
op.create_table(
    "big",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("a", sa.Integer, nullable=False),
    sa.Column("c", sa.Integer, nullable=True),
)
op.create_table(
    "arch",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("a", sa.Integer, nullable=False),
    sa.Column("c", sa.Integer, nullable=True),
)
op.create_table("small", sa.Column("id", sa.Integer, primary_key=True), sa.Column("x", sa.Integer))
"""
FILL = {
    "mysql": [
        f"INSERT INTO big (id, a, c) SELECT seq, seq, 0 FROM seq_1_to_{ROWS}",
        "INSERT INTO small (id, x) SELECT seq, 0 FROM seq_1_to_10",
        "ANALYZE TABLE big, small",
    ],
    "postgresql": [
        f"INSERT INTO big (id, a, c) SELECT g, g, 0 FROM generate_series(1, {ROWS}) AS g",
        "INSERT INTO small (id, x) SELECT g, 0 FROM generate_series(1, 10) AS g",
        "ANALYZE big",
        "ANALYZE small",
    ],
}


def _filled(package: AppPackage, backend: str) -> None:
    ok(package.cli("init"))
    package.write_revision("a1", None, TABLES)
    ok(package.cli("upgrade"))
    engine = package.engine()
    try:
        with engine.begin() as connection:
            for statement in FILL[backend]:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _lint(package: AppPackage, body: str, **config: object) -> dict:
    package.write_revision("b2", "a1", body)
    app = package.create_app(**config)
    result = app.test_cli_runner().invoke(args=["db", "lint", "--json", "b2"])
    report = json.loads(result.output)
    assert result.exit_code == (0 if report["ok"] else 1), result.output
    return report


def _found(report: dict) -> list[tuple[int, str]]:
    return [(f["line"], f["rule"]) for f in report["findings"] if not f["allowed"]]


@pytest.mark.parametrize("backend", SERVERS)
def test_the_six_statements_of_issue_27(package: AppPackage, backend: str) -> None:
    _filled(package, backend)
    # 1. a WHERE that bounds nothing
    report = _lint(package, 'op.execute("UPDATE big SET c = a + 1 WHERE id > 0")')
    assert _found(report) == [(15, "data-migration")], report
    assert "EXPLAIN estimates" in report["findings"][0]["detail"], report
    # 2. the only WHERE is inside a subquery
    report = _lint(
        package,
        'op.execute("UPDATE big SET c = (SELECT max(x) FROM small WHERE small.id = big.id)")',
    )
    assert _found(report) == [(15, "data-migration")], report
    # 3. INSERT ... SELECT locks the rows it reads on MySQL/MariaDB (not on PostgreSQL)
    report = _lint(package, 'op.execute("INSERT INTO arch (id, a, c) SELECT id, a, c FROM big")')
    assert _found(report) == ([(15, "data-migration")] if backend == "mysql" else []), report
    # 4. a DELETE and an UPDATE, each with a WHERE over most rows
    report = _lint(
        package,
        """
        op.execute("DELETE FROM big WHERE c < 0 OR a > 100")
        op.execute("UPDATE big SET c = 1 WHERE a > 50")
        """,
    )
    assert _found(report) == [(15, "data-migration"), (16, "data-migration")], report
    # 6. the batching recipe itself: a bounded batch is not flagged
    batch = (
        "UPDATE big SET c = 0 ORDER BY id LIMIT 1000"
        if backend == "mysql"
        else "UPDATE big SET c = 0 WHERE id > 1000 AND id <= 2000"
    )
    report = _lint(package, f'op.execute("{batch}")')
    assert _found(report) == [] and report["notes"] == [], report


@pytest.mark.parametrize("backend", SERVERS)
def test_raw_ddl_is_judged_by_the_server(package: AppPackage, backend: str) -> None:
    """5. ``op.execute("ALTER TABLE ...")``: on MySQL/MariaDB tried on the scratch database
    with the algorithm clauses, as ``alter_column`` is; on PostgreSQL squawk's finding is
    on the revision file's line."""
    _filled(package, backend)
    if backend == "mysql":
        report = _lint(package, 'op.execute("ALTER TABLE big MODIFY c BIGINT")')
        assert _found(report) == [(15, "mysql-table-copy")], report
        assert "ALGORITHM=INPLACE" in report["findings"][0]["detail"], report
        report = _lint(package, 'op.execute("ALTER TABLE big ADD COLUMN d INT NULL")')
        assert _found(report) == [], report
        report = _lint(package, 'op.execute("CREATE INDEX ix_big_a ON big (a)")')
        assert _found(report) == [], report
    else:
        report = _lint(package, 'op.execute("CREATE INDEX ix_big_a ON big (a)")')
        assert _found(report) == [(15, "create-index-not-concurrently")], report
        assert report["findings"][0]["path"].endswith("b2_rev.py")


@pytest.mark.parametrize("backend", SERVERS)
def test_rows_in_one_transaction_count_together(package: AppPackage, backend: str) -> None:
    """Bounded batches in the revision's transaction keep all their rows locked until it
    commits: flagged where the total crosses the threshold; the same batches each
    committed in ``autocommit_block()`` are not. Core statements and ``bulk_insert`` are
    judged the same way, and the threshold is ``ENTITYDB_LINT_MAX_ROWS``."""
    _filled(package, backend)
    loop = """
    for start in range(0, 30000, 2000):
        op.execute(f"UPDATE big SET c = 2 WHERE id > {start} AND id <= {start + 2000}")
    """
    report = _lint(package, loop)
    assert _found(report) == [(16, "data-migration")], json.dumps(report["findings"], indent=1)
    assert "rows stay locked until it commits" in report["findings"][0]["detail"], report
    indented = "\n".join("    " + line for line in loop.strip().splitlines())
    report = _lint(package, f"with op.get_context().autocommit_block():\n{indented}")
    assert _found(report) == [], report

    core = """
    big = sa.table("big", sa.column("id"), sa.column("c"))
    op.execute(big.update().values(c=3))
    """
    assert _found(_lint(package, core)) == [(16, "data-migration")]
    small = """
    small = sa.table("small", sa.column("id"), sa.column("x"))
    op.bulk_insert(small, [{"id": n, "x": 0} for n in range(100, 106)])
    """
    assert _found(_lint(package, small)) == []
    assert _found(_lint(package, small, ENTITYDB_LINT_MAX_ROWS=5)) == [(16, "data-migration")]


@pytest.mark.parametrize("backend", SERVERS)
def test_a_small_table_is_not_flagged_but_noted(package: AppPackage, backend: str) -> None:
    _filled(package, backend)
    report = _lint(package, 'op.execute("UPDATE small SET x = 1")')
    assert _found(report) == [], report
    assert len(report["notes"]) == 1, report
    assert "changes every row of 'small'" in report["notes"][0]
    assert "ENTITYDB_LINT_MAX_ROWS=10000" in report["notes"][0]


@pytest.mark.parametrize("value", ["many", -1, True, 2.5])
def test_bad_max_rows_is_one_line(sqlite_package: AppPackage, value: object) -> None:
    with pytest.raises(ConfigurationError) as error:
        sqlite_package.create_app(ENTITYDB_LINT_MAX_ROWS=value)
    assert str(error.value) == (
        f"'ENTITYDB_LINT_MAX_ROWS' is {value!r}; use a whole number of rows such as 10000"
        " (0 flags every data statement that touches a row)."
    )
