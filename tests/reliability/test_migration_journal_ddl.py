"""The migration journal and MySQL/MariaDB's implicit commits, on the real server.

A schema change commits implicitly as it starts (the revision's earlier writes with it),
then applies. The journal marks the row ``committed_part`` before the statement runs (were
the run killed in it, nobody could tell whether it applied) and takes the mark back when
the server refuses the statement and nothing of the revision was committed before: such a
revision is ``rolled_back`` and the next upgrade runs it again, without ``repair``. A
refused schema change after a write still committed that write: the revision is
``failed`` and waits for a person.

Also here, on the attempts these leave: ``history -v`` shows every one, and ``repair
--applied`` stamps the version table env.py names.
"""

from __future__ import annotations

import os
import re
import signal

import pytest
import sqlalchemy as sa
from helpers.journal import journal_rows
from helpers.lock_scenario import finish, popen_upgrade, runlog, wait_until, write_slow_revisions
from helpers.migration_apps import AppPackage, ok, without_database_line

MYSQL = [pytest.param("mysql", marks=pytest.mark.mysql)]

WHO = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by \S+ \(\S+ pid \d+, flask-entitydb [\w.]+\)"
"""When and by whom, in a line of ``history -v``."""

INDEX_FIRST = """
op.create_index("ix_runlog_who", "runlog", ["who"])
op.execute("INSERT INTO runlog (who) VALUES ('after')")
"""

INSERT_THEN_INDEX = """
op.execute("INSERT INTO runlog (who) VALUES ('first')")
op.create_index("ix_runlog_who", "runlog", ["who"])
op.execute("INSERT INTO runlog (who) VALUES ('after')")
"""


def _committed_part(package: AppPackage, seq: int) -> bool:
    return bool(
        package.scalar(
            "SELECT committed_part FROM flask_entitydb_journal"
            f" WHERE revision = 'r2' AND seq = {seq}"
        )
    )


def _indexes(package: AppPackage) -> list[str]:
    engine = package.engine()
    try:
        return [str(index["name"]) for index in sa.inspect(engine).get_indexes("runlog")]
    finally:
        engine.dispose()


def _error_line(output: str) -> str:
    lines = [line for line in without_database_line(output).splitlines() if line.strip()]
    return lines[-1]


@pytest.mark.parametrize("backend", MYSQL)
def test_a_refused_first_schema_change_is_rolled_back_and_runs_again_mysql(
    package: AppPackage,
) -> None:
    """The revision's first statement, ``CREATE INDEX``, gives up behind a transaction
    that reads the table (lock wait timeout, 1205): nothing was committed, so the next
    upgrade runs it again (before: ``failed``, "may hold a partial change", stopped until
    ``flask db repair``)."""
    write_slow_revisions(package, 0)  # the app, r1 (runlog); r2 replaced here
    package.write_revision("r2", "r1", INDEX_FIRST)
    ok(package.cli("upgrade", "r1"))
    engine = package.engine()
    try:
        with engine.connect() as blocker:  # a slow request, in the test's own database
            blocker.exec_driver_sql("SELECT count(*) FROM runlog").all()
            app = package.create_app(ENTITYDB_MIGRATION_LOCK_TIMEOUT=1)
            failed = package.cli("upgrade", app=app)
            blocker.rollback()
    finally:
        engine.dispose()
    assert failed.exit_code == 1
    line = _error_line(failed.output)
    start = "Error: Revision 'r2' (revision r2) failed: (1205, 'Lock wait timeout exceeded"
    assert line.startswith(start), line
    assert "it was rolled back and the version table is at 'r1'" in line
    assert "partial" not in line and "repair" not in line
    assert journal_rows(package.url) == [("r1", 1, "applied"), ("r2", 1, "rolled_back")]
    assert not _committed_part(package, 1)
    assert "ix_runlog_who" not in _indexes(package)

    again = package.cli("upgrade")  # the blocker is gone: no repair needed
    assert again.exit_code == 0, again.output
    assert "partial" not in again.output and "interrupted" not in again.output
    assert runlog(package.url) == ["after"]
    assert "ix_runlog_who" in _indexes(package)
    assert package.version() == {"r2"}
    assert journal_rows(package.url) == [
        ("r1", 1, "applied"), ("r2", 1, "rolled_back"), ("r2", 2, "applied")
    ]  # fmt: skip
    assert _committed_part(package, 2)  # its CREATE INDEX committed
    # history -v shows both attempts, oldest first (before: only the applied one)
    attempts = re.compile(
        rf"^Upgrade failed {WHO} after \d+\.\d\d s, rolled back: \(1205, 'Lock wait timeout"
        rf" exceeded; try restarting transaction'\)\nApplied {WHO} in \d+\.\d\d s$",
        re.MULTILINE,
    )
    history = ok(package.cli("history", "-v"))
    assert attempts.search(history), history


@pytest.mark.parametrize("backend", MYSQL)
def test_a_refused_schema_change_after_a_write_committed_the_write_mysql(
    package: AppPackage,
) -> None:
    """``INSERT``, then a ``CREATE INDEX`` the server refuses (duplicate key name, 1061):
    the implicit commit as the statement started committed the row, so the revision is
    ``failed`` and the next upgrade stops until a person repairs it."""
    write_slow_revisions(package, 0)
    package.write_revision("r2", "r1", INSERT_THEN_INDEX)
    ok(package.cli("upgrade", "r1"))
    with package.engine().begin() as connection:  # the name taken, by hand
        connection.exec_driver_sql("CREATE INDEX ix_runlog_who ON runlog (who)")
    failed = package.cli("upgrade")
    assert failed.exit_code == 1
    line = _error_line(failed.output)
    assert "(1061, \"Duplicate key name 'ix_runlog_who'\")" in line, line
    assert "the database may hold a partial change from 'r2'" in line
    assert "flask db repair r2" in line
    # the server really committed the revision's INSERT (the version table did not move)
    assert runlog(package.url) == ["first"]
    assert package.version() == {"r1"}
    assert journal_rows(package.url) == [("r1", 1, "applied"), ("r2", 1, "failed")]
    assert _committed_part(package, 1)

    stopped = package.cli("upgrade")
    assert stopped.exit_code == 1
    line = _error_line(stopped.output)
    assert line.startswith("Error: Revision 'r2' (revision r2) failed in the run of "), line
    assert "it may have committed part of its changes" in line
    assert runlog(package.url) == ["first"]  # not run again


@pytest.mark.parametrize("backend", MYSQL)
def test_a_run_killed_while_its_first_schema_change_waits_stops_the_next_mysql(
    package: AppPackage,
) -> None:
    """The migrator is killed (``kill -9``) while its first statement, ``CREATE INDEX``,
    waits behind a reader; the server goes on with the statement once the reader ends.
    Nothing of the revision had been committed before, but the journal cannot know what
    the statement did: the next upgrade stops, and the index is indeed there."""
    write_slow_revisions(package, 0)
    package.write_revision("r2", "r1", INDEX_FIRST)
    ok(package.cli("upgrade", "r1"))
    engine = package.engine()
    try:
        with engine.connect() as blocker:
            blocker.exec_driver_sql("SELECT count(*) FROM runlog").all()
            migrator = popen_upgrade(
                package, extra_env={"TESTAPP_ENTITYDB_MIGRATION_LOCK_TIMEOUT": "60"}
            )
            wait_until(lambda: _waiting_for_the_table(package), what="the migrator's CREATE INDEX")
            os.kill(migrator.pid, signal.SIGKILL)
            finish(migrator)
            blocker.rollback()
    finally:
        engine.dispose()
    wait_until(lambda: not _waiting_for_the_table(package), what="the server's CREATE INDEX")
    stopped = package.run("upgrade")
    assert stopped.returncode == 1
    line = _error_line(stopped.stderr)
    assert line.startswith("Error: Revision 'r2' (revision r2) was interrupted: the run of"), line
    assert "it may have committed part of its changes" in line
    assert "flask db repair r2" in line
    assert "ix_runlog_who" in _indexes(package)  # the server applied it after the kill
    assert runlog(package.url) == []
    assert journal_rows(package.url) == [("r1", 1, "applied"), ("r2", 1, "interrupted")]
    interrupted = re.compile(
        rf"^Upgrade interrupted {WHO}: its run is gone, may have committed part of its"
        r" changes$",
        re.MULTILINE,
    )
    history = ok(package.cli("history", "-v"))
    assert interrupted.search(history), history


@pytest.mark.parametrize("backend", MYSQL)
def test_repair_applied_stamps_the_version_table_env_py_uses_mysql(package: AppPackage) -> None:
    """``run_migrations(version_table="acme_versions")`` in env.py: ``repair --applied``
    stamps that table, as upgrade moves it (before: it created and stamped
    ``alembic_version``, and ``acme_versions`` stayed at 'r1')."""
    write_slow_revisions(package, 0)
    env = package.migrations / "env.py"
    env.write_text(
        env.read_text().replace("run_migrations()", 'run_migrations(version_table="acme_versions")')
    )
    package.write_revision("r2", "r1", INSERT_THEN_INDEX)
    ok(package.cli("upgrade", "r1"))
    with package.engine().begin() as connection:
        connection.exec_driver_sql("CREATE INDEX ix_runlog_who ON runlog (who)")
    assert package.cli("upgrade").exit_code == 1  # failed after its INSERT committed
    # a person finishes its work by hand (the index is there) and says so
    with package.engine().begin() as connection:
        connection.exec_driver_sql("INSERT INTO runlog (who) VALUES ('after')")
    repaired = ok(package.cli("repair", "r2", "--applied"))
    assert repaired == "Marked 'r2' as applied (journal and version table); nothing was run.\n"
    assert package.scalar("SELECT version_num FROM acme_versions") == "r2"
    assert "alembic_version" not in package.tables()
    upgraded = ok(package.cli("upgrade"))
    assert without_database_line(upgraded) == "Nothing to do: the database is already at 'head'.\n"
    assert sorted(runlog(package.url)) == ["after", "first"]
    attempts = re.compile(
        rf"^Upgrade failed {WHO} after \d+\.\d\d s, may have committed part of its changes:"
        rf" \(1061, \"Duplicate key name 'ix_runlog_who'\"\)\n"
        rf"Marked applied by 'flask db repair' {WHO}$",
        re.MULTILINE,
    )
    history = ok(package.cli("history", "-v"))
    assert attempts.search(history), history


def _waiting_for_the_table(package: AppPackage) -> bool:
    """Whether a ``CREATE INDEX`` runs in the test's database now (waiting for the
    reader's metadata lock, or running)."""
    return bool(
        package.scalar(
            "SELECT count(*) FROM information_schema.PROCESSLIST"
            " WHERE DB = DATABASE() AND INFO LIKE 'CREATE INDEX%'"
        )
    )
