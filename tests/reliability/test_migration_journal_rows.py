"""What the migration journal writes for each revision, and how many statements that
costs a run on MySQL/MariaDB.

There the ``running`` row is committed just before a revision's first statement (marked
``committed_part`` at once when that statement is a schema change, which commits
implicitly), and the migration lock is proved held by the ``applied`` update itself, so a
revision of one schema change costs four statements: the row, the change, the version
table and ``applied``. A revision that runs no statement gets one row with its outcome.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from helpers.journal import journal_rows
from helpers.lock_scenario import write_slow_revisions
from helpers.migration_apps import AppPackage, ok

from flask_entitydb import migrations

MYSQL = [pytest.param("mysql", marks=pytest.mark.mysql)]
SERVERS = [
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("postgresql", marks=pytest.mark.postgresql),
]


def _tables(package: AppPackage, first: int, count: int) -> None:
    down = "r2"
    for number in range(first, first + count):
        rev = f"t{number}"
        package.write_revision(
            rev,
            down,
            f"op.create_table('tab{number}', sa.Column('id', sa.Integer, primary_key=True))",
            f"op.drop_table('tab{number}')",
        )
        down = rev


def _more_statements_for_six_more_revisions(package: AppPackage, statements: list[str]) -> int:
    """How many more statements an upgrade through the one-table revisions ``t0``..``t6``
    sends than one through ``t0`` alone (the run's own set-up cancels out); afterwards
    ``t0`` has been upgraded, downgraded and upgraded again."""
    write_slow_revisions(package, 0)
    ok(package.cli("upgrade"))  # r1, r2
    _tables(package, 0, 7)
    app = package.create_app()
    with app.app_context():
        statements.clear()
        migrations.upgrade(revision="t0")
        one = len(statements)
        migrations.downgrade(revision="r2")
        statements.clear()
        migrations.upgrade(revision="t6")
        return len(statements) - one


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every statement any engine of this process sends while the test runs."""
    sent: list[str] = []

    def record(conn: sa.Connection, cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    yield sent
    sa.event.remove(sa.Engine, "before_cursor_execute", record)


@pytest.mark.parametrize("backend", MYSQL)
def test_a_schema_change_revision_costs_four_statements_mysql(
    package: AppPackage, statements: list[str]
) -> None:
    """Upgrading through 6 more one-table revisions sends 24 more statements than through
    1 (the run's own set-up is the same): per revision the journal row (already
    ``committed_part``), the CREATE TABLE, the version table, ``applied`` with the lock
    proof. Before, 6: a ``running`` row, then its ``committed_part`` mark before the DDL,
    and a lock query of its own."""
    assert _more_statements_for_six_more_revisions(package, statements) == 4 * 6, statements
    rows = journal_rows(package.url)
    assert [r for r in rows if r[0] == "t6"] == [("t6", 1, "applied")]
    committed = package.scalar(
        "SELECT count(*) FROM flask_entitydb_journal"
        " WHERE revision LIKE 't%%' AND direction = 'upgrade' AND committed_part"
    )
    assert committed == 1 + 7  # every upgrade of a schema change: it commits implicitly


def test_a_schema_change_revision_costs_four_statements_sqlite(
    sqlite_package: AppPackage, statements: list[str]
) -> None:
    """On SQLite a revision runs in a transaction of its own that also holds its journal
    row, written once with its outcome (nobody can see a ``running`` row there): BEGIN,
    the CREATE TABLE, the version table, the row. Before, 5: a ``running`` row, then its
    ``applied`` update."""
    package = sqlite_package
    assert _more_statements_for_six_more_revisions(package, statements) == 4 * 6, statements
    rows = journal_rows(package.url)
    assert [r for r in rows if r[0] == "t0"] == [
        ("t0", 1, "applied"),
        ("t0", 2, "applied"),  # the downgrade
        ("t0", 3, "applied"),
    ]


@pytest.mark.parametrize("backend", SERVERS)
def test_a_revision_without_statements_gets_one_row(package: AppPackage) -> None:
    write_slow_revisions(package, 0)
    package.write_revision("r3", "r2", "pass")
    ok(package.cli("upgrade"))
    assert [r for r in journal_rows(package.url) if r[0] == "r3"] == [("r3", 1, "applied")]
    assert package.version() == {"r3"}


@pytest.mark.parametrize("backend", SERVERS)
def test_a_revision_failing_before_its_first_statement_is_rolled_back(
    package: AppPackage,
) -> None:
    """Its Python raised before it sent anything: the attempt is in the journal
    (``rolled_back``, with the error, in ``history -v``) and, once fixed, the revision
    runs without ``repair``."""
    write_slow_revisions(package, 0)
    path = package.write_revision("r3", "r2", "raise RuntimeError('not yet')")
    result = package.cli("upgrade")
    assert result.exit_code == 1
    assert [r for r in journal_rows(package.url) if r[0] == "r3"] == [("r3", 1, "rolled_back")]
    history = ok(package.cli("history", "-v"))
    assert "rolled back: not yet" in history, history
    path.write_text(path.read_text().replace("raise RuntimeError('not yet')", "pass"))
    ok(package.cli("upgrade"))
    assert [r for r in journal_rows(package.url) if r[0] == "r3"] == [
        ("r3", 1, "rolled_back"),
        ("r3", 2, "applied"),
    ]
    assert package.version() == {"r3"}


@pytest.mark.parametrize("backend", MYSQL)
def test_a_lock_released_during_a_revision_stops_the_run_mysql(package: AppPackage) -> None:
    """The lock proof on the ``applied`` update is a real check: a revision that releases
    the run's ``GET_LOCK`` (nothing else can, on its session) stops the run before its
    version is committed, with the lock's error, and the revision after it never runs."""
    write_slow_revisions(package, 0)
    ok(package.cli("upgrade"))
    package.write_revision(
        "r3",
        "r2",
        """
        op.create_table("tab3", sa.Column("id", sa.Integer, primary_key=True))
        op.execute("SELECT RELEASE_ALL_LOCKS()")
        """,
    )
    package.write_revision(
        "r4", "r3", "op.create_table('tab4', sa.Column('id', sa.Integer, primary_key=True))"
    )
    result = package.cli("upgrade")
    assert result.exit_code == 1
    assert "was lost (the server released it); stopped before the next revision" in (result.output)
    assert package.version() == {"r2"}
    assert not [r for r in journal_rows(package.url) if r[0] == "r4"]
