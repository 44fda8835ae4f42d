"""``flask db lint`` checks the app database's rows against the operations that would
fail on them (read-only queries, only when the database is at the revision before the
linted ones): each finding says how many rows and the query that shows them, the query
really lists them, and the upgrade really fails on the server."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from helpers.migration_apps import AppPackage, ok

SERVERS = [
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
]

TABLES = """
op.create_table("teams", sa.Column("id", sa.Integer, primary_key=True))
op.create_table(
    "people",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(100), nullable=True),
    sa.Column("nick", sa.String(40), nullable=True),
    sa.Column("age", sa.Integer, nullable=True),
    sa.Column("team_id", sa.Integer, nullable=True),
)
"""
ROWS = [
    "INSERT INTO teams (id) VALUES (1), (2)",
    "INSERT INTO people (id, email, nick, age, team_id) VALUES"
    " (1, 'a@x', 'short', 30, 1), (2, 'b@x', 'a-rather-long-nick', 40, 2),"
    " (3, 'a@x', NULL, -1, 7), (4, 'c@x', 'x', 50, 9), (5, NULL, NULL, 20, NULL)",
]

CASES = [
    pytest.param(
        'op.create_index("ix_people_email", "people", ["email"], unique=True)',
        2,
        "share values of (email), which the unique index needs distinct",
        id="unique",
    ),
    pytest.param(
        'op.alter_column("people", "nick", nullable=False, existing_type=sa.String(40))',
        2,
        "hold NULL in 'nick', which becomes NOT NULL",
        id="not-null",
    ),
    pytest.param(
        'op.alter_column("people", "nick", type_=sa.String(10), existing_type=sa.String(40))',
        1,
        "hold values of 'nick' longer than 10 characters",
        id="shorter-type",
    ),
    pytest.param(
        'op.create_foreign_key("fk_people_team", "people", "teams", ["team_id"], ["id"])',
        2,
        "refer to (team_id) values that 'teams' does not hold",
        id="foreign-key",
    ),
    pytest.param(
        'op.create_check_constraint("ck_people_age", "people", "age >= 0")',
        1,
        "violate the check (age >= 0)",
        id="check",
    ),
]


def _people(package: AppPackage) -> None:
    ok(package.cli("init"))
    package.write_revision("a1", None, TABLES)
    ok(package.cli("upgrade"))
    engine = package.engine()
    try:
        with engine.begin() as connection:
            for statement in ROWS:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _rows_rules(report: dict) -> list[str]:
    return [f["rule"] for f in report["findings"] if f["rule"] == "fails-on-data"]


def _shown(package: AppPackage, query: str) -> int:
    engine = package.engine()
    try:
        with engine.connect() as connection:
            return len(connection.exec_driver_sql(query).all())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", SERVERS)
@pytest.mark.parametrize(("body", "rows", "what"), CASES)
def test_lint_says_it_would_fail_and_it_does(
    package: AppPackage, backend: str, body: str, rows: int, what: str
) -> None:
    _people(package)
    package.write_revision("b2", "a1", body)
    result = package.cli("lint", "--json")
    report = json.loads(result.output)
    assert result.exit_code == 1, result.output
    found = [f for f in report["findings"] if f["rule"] == "fails-on-data"]
    assert [f["line"] for f in found] == [15], result.output
    detail = found[0]["detail"]
    prefix = f"would fail on this database: {rows} row{'s' if rows != 1 else ''} of 'people' "
    assert detail.startswith(prefix + what + "; see them with: SELECT "), detail
    query = detail.split("; see them with: ", 1)[1]
    shown = _shown(package, query)
    assert shown == (1 if "unique" in what else rows), query  # unique: one duplicated value
    upgrade = package.cli("upgrade")
    assert upgrade.exit_code == 1, upgrade.output
    assert "Revision 'b2'" in upgrade.output and "failed" in upgrade.output
    assert package.version() == {"a1"}


@pytest.mark.parametrize("backend", SERVERS)
def test_rows_fixed_first_are_not_reported(package: AppPackage, backend: str) -> None:
    """A backfill earlier in the linted revisions fixes the rows: the check is not made
    (its rows are not the ones here), and the upgrade runs."""
    _people(package)
    package.write_revision(
        "b2",
        "a1",
        """
        op.execute("UPDATE people SET nick = 'none' WHERE nick IS NULL")
        op.alter_column("people", "nick", nullable=False, existing_type=sa.String(40))
        """,
    )
    report = json.loads(package.cli("lint", "--json").output)
    assert "fails-on-data" not in [f["rule"] for f in report["findings"]], report
    ok(package.cli("upgrade"))


@pytest.mark.parametrize("backend", SERVERS)
def test_only_at_the_revision_before(package: AppPackage, backend: str) -> None:
    """Linting a range the database is not right before: no row check, and a note says
    why; at the revision before (explicit range), the check is made."""
    _people(package)
    package.write_revision("b2", "a1", 'op.add_column("people", sa.Column("x", sa.Integer))')
    package.write_revision("c3", "b2", CASES[1].values[0])
    report = json.loads(package.cli("lint", "--json", "c3").output)
    assert "fails-on-data" not in [f["rule"] for f in report["findings"]], report
    assert (
        "1 operation(s) (unique, NOT NULL, shorter type, foreign key, CHECK) were not"
        " checked against the rows: the database is at a1, not at the revision before the"
        " linted ones"
    ) in report["notes"], report
    report = json.loads(package.cli("lint", "--json", "b2:c3").output)
    assert _rows_rules(report) == ["fails-on-data"], report
    engine = package.engine()
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE people SET nick = 'n' WHERE nick IS NULL"))
    engine.dispose()
    report = json.loads(package.cli("lint", "--json", "b2:c3").output)
    assert _rows_rules(report) == [], report
