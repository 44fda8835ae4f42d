"""The migration journal of every entry point, its checksums and what ``history -v`` and
``current -v`` show from it."""

from __future__ import annotations

import re

import sqlalchemy as sa
from helpers.journal import journal_rows
from helpers.lock_scenario import finish, popen_api_upgrade, write_slow_revisions
from helpers.migration_apps import AppPackage, ok, without_database_line

from flask_entitydb import migrations


def test_every_entry_point_keeps_the_journal(package: AppPackage) -> None:
    """``flask db``, the Python API and Alembic's own API (through the generated env.py)
    each write a row per revision, ``applied`` with the version table."""
    write_slow_revisions(package, 0, third=True)
    for rev, down in (("r2", "r1"), ("r3", "r2")):
        table = f"op.create_table('t{rev}', sa.Column('id', sa.Integer, primary_key=True))"
        package.write_revision(rev, down, table, f"op.drop_table('t{rev}')")
    code, out, err = finish(popen_api_upgrade(package))  # raw Alembic: r1..r3
    assert code == 0, (out, err)
    assert journal_rows(package.url) == [("r1", 1, "applied"), ("r2", 1, "applied"),
                                         ("r3", 1, "applied")]  # fmt: skip
    app = package.create_app()
    with app.app_context():
        assert [a.revision for a in migrations.downgrade(revision="r1")] == ["r3", "r2"]
    assert package.version() == {"r1"}
    ok(package.cli("upgrade"))  # the CLI
    assert journal_rows(package.url) == [
        ("r1", 1, "applied"),
        ("r2", 1, "applied"), ("r2", 2, "applied"), ("r2", 3, "applied"),
        ("r3", 1, "applied"), ("r3", 2, "applied"), ("r3", 3, "applied"),
    ]  # fmt: skip
    directions = package.scalar(
        "SELECT count(*) FROM flask_entitydb_journal WHERE direction = 'downgrade'"
    )
    assert directions == 2


def test_an_edited_applied_revision_is_named_by_check_and_upgrade(
    sqlite_package: AppPackage,
) -> None:
    package = sqlite_package
    write_slow_revisions(package, 0)
    users = """
        op.create_table(
            "users",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(80), nullable=False),
        )
    """
    package.write_revision("r1", None, users)
    path = package.write_revision("r2", "r1", "op.execute('SELECT 1')")
    ok(package.cli("upgrade"))
    assert ok(package.cli("check")).startswith("The database is at head")
    text = path.read_text()
    # comments and blank lines are no edit
    path.write_text(text.replace("def upgrade():", "# reviewed\n\ndef upgrade():"))
    assert package.cli("check").exit_code == 0
    path.write_text(text.replace("SELECT 1", "SELECT 2"))
    result = package.cli("check")
    assert result.exit_code == 1
    assert without_database_line(result.output).splitlines()[0] == (
        "Revision 'r2' (r2_rev.py) was edited after it was applied: its checksum differs"
        " from the journal's; review the change (it will not run again), then accept it"
        " with 'flask db repair --checksums'."
    )
    upgraded = package.run("upgrade")
    assert upgraded.returncode == 0
    assert "Revision 'r2' (r2_rev.py) was edited after it was applied" in upgraded.stderr
    repaired = ok(package.cli("repair", "--checksums"))
    assert repaired == "Accepted the edited file(s) of 'r2': their checksums are recorded now.\n"
    assert package.cli("check").exit_code == 0
    assert ok(package.cli("repair", "--checksums")).startswith("Nothing to repair")


def test_history_and_current_verbose_show_the_journal(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    write_slow_revisions(package, 0)
    ok(package.cli("upgrade"))
    line = re.compile(
        r"^Applied \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by \S+ \(\S+ pid \d+,"
        r" flask-entitydb [\w.]+\) in \d+\.\d\d s$",
        re.MULTILINE,
    )
    history = ok(package.cli("history", "-v"))
    assert len(line.findall(history)) == 2, history
    current = ok(package.cli("current", "-v"))
    assert len(line.findall(current)) == 1, current
    assert not line.search(ok(package.cli("history")))
    app = package.create_app()
    with app.app_context():
        infos = migrations.history(journal=True)
    assert [bool(line.match(info.journal)) for info in infos] == [True, True]


def test_the_journal_times_a_revision_below_the_second(package: AppPackage) -> None:
    """``r2`` sleeps 0.3 s on the server: ``history -v`` says it took at least that. Before,
    MySQL/MariaDB kept the journal's times in whole seconds (``DATETIME``), so a revision
    of 0.12 s showed "in 0.00 s"."""
    write_slow_revisions(package, 0.3)
    ok(package.cli("upgrade"))
    history = ok(package.cli("history", "-v"))  # newest first: r2, then r1
    took = re.findall(r"^Applied .* in (\d+\.\d\d) s$", history, re.MULTILINE)
    assert len(took) == 2 and float(took[0]) >= 0.3, history
    engine = package.engine()
    try:
        with engine.connect() as connection:
            table = sa.Table("flask_entitydb_journal", sa.MetaData(), autoload_with=connection)
            row = connection.execute(
                sa.select(table.c.started_at, table.c.finished_at).where(table.c.revision == "r2")
            ).one()
    finally:
        engine.dispose()
    assert (row.finished_at - row.started_at).microseconds != 0, row  # not whole seconds


def test_repair_says_what_is_wrong(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    write_slow_revisions(package, 0)
    ok(package.cli("upgrade"))
    result = package.cli("repair")
    assert result.exit_code == 1
    assert without_database_line(result.output) == (
        "Error: Nothing to repair: no revision is interrupted or failed in the journal.\n"
    )
    assert "--applied" in ok(package.cli("repair", "--help"))


def _custom_version_table(package: AppPackage) -> None:
    env = package.migrations / "env.py"
    env.write_text(
        env.read_text().replace("run_migrations()", 'run_migrations(version_table="acme_versions")')
    )


def test_repair_checksums_reads_the_version_table_env_py_uses(sqlite_package: AppPackage) -> None:
    """``run_migrations(version_table=...)`` in env.py: ``repair --checksums`` reads the
    revisions applied from that table, as upgrade and check do (before: it read
    ``alembic_version``, found no applied revision and accepted nothing)."""
    package = sqlite_package
    write_slow_revisions(package, 0)
    _custom_version_table(package)
    path = package.write_revision("r2", "r1", "op.execute('SELECT 1')")
    ok(package.cli("upgrade"))
    assert "alembic_version" not in package.tables()
    path.write_text(path.read_text().replace("SELECT 1", "SELECT 2"))
    assert "Revision 'r2' (r2_rev.py) was edited" in package.cli("check").output
    repaired = ok(package.cli("repair", "--checksums"))
    assert repaired == "Accepted the edited file(s) of 'r2': their checksums are recorded now.\n"
    assert "was edited" not in package.cli("check").output
    assert "alembic_version" not in package.tables()


def test_an_upgrade_reads_the_journal_once_not_per_revision(package: AppPackage) -> None:
    """The run reads each revision's latest row from one read of the journal (the lock is
    held: only the run writes it); the rows are those a read per revision gives."""
    write_slow_revisions(package, 0, third=True)
    for rev, down in (("r2", "r1"), ("r3", "r2"), ("r4", "r3")):
        table = f"op.create_table('t{rev}', sa.Column('id', sa.Integer, primary_key=True))"
        package.write_revision(rev, down, table, f"op.drop_table('t{rev}')")
    ok(package.cli("upgrade", "r2"))
    ok(package.cli("downgrade", "r1"))
    reads: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "flask_entitydb_journal" in (
            statement
        ):
            reads.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
    try:
        ok(package.cli("upgrade"))  # r2 (its third row), r3, r4
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
    assert len(reads) <= 2, reads  # the applied checksums, the latest rows
    assert journal_rows(package.url) == [
        ("r1", 1, "applied"),
        ("r2", 1, "applied"), ("r2", 2, "applied"), ("r2", 3, "applied"),
        ("r3", 1, "applied"), ("r4", 1, "applied"),
    ]  # fmt: skip
