"""The migration journal on the real servers: the two reproductions of issue 24.

1. PostgreSQL, a revision with ``autocommit_block()`` (``CREATE INDEX CONCURRENTLY``),
   three concurrent upgrades: before, the lock was a transaction lock released by the
   block's commit, the ``INSERT`` ran three times and all three runs failed. Now the lock
   is a session lock held across the block, the waiters hold no transaction the index
   build waits for: the first run succeeds, the data step runs once.
2. MariaDB, DDL commits implicitly: the migrator is killed (``kill -9``) mid-revision
   while two more wait. Before, each waiter ran the revision again. Now each stops with
   one line naming the interrupted revision, and ``flask db repair`` lets the upgrade
   finish.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from helpers.journal import journal_rows
from helpers.lock_scenario import (
    finish,
    popen_upgrade,
    runlog,
    sleeping,
    wait_until,
    write_slow_revisions,
)
from helpers.migration_apps import AppPackage, without_database_line

POSTGRESQL = [pytest.param("postgresql", marks=pytest.mark.postgresql)]
MYSQL = [pytest.param("mysql", marks=pytest.mark.mysql)]

CONCURRENT_INDEX = """
import os
op.execute(sa.text("INSERT INTO runlog (who) VALUES (:who)").bindparams(who=str(os.getpid())))
op.execute("SELECT pg_sleep(2)")
with op.get_context().autocommit_block():
    op.create_index("ix_runlog_who", "runlog", ["who"], postgresql_concurrently=True)
op.execute("SELECT pg_sleep(2)")
"""


@pytest.mark.parametrize("backend", POSTGRESQL)
def test_autocommit_block_under_three_concurrent_upgrades_runs_once_postgresql(
    package: AppPackage,
) -> None:
    write_slow_revisions(package, 0)  # the app, r1 (runlog); r2 replaced here
    package.write_revision("r2", "r1", CONCURRENT_INDEX)
    first = popen_upgrade(package)
    wait_until(lambda: sleeping(package.url), what="the first upgrade's revision")
    others = [popen_upgrade(package) for _ in range(2)]
    results = [finish(first), *(finish(p) for p in others)]
    assert [code for code, _, _ in results] == [0, 0, 0], results
    assert "Applied r2" in results[0][1], results
    assert len(runlog(package.url)) == 1
    assert package.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_runlog_who'") == 1
    assert journal_rows(package.url) == [("r1", 1, "applied"), ("r2", 1, "applied")]


DDL_THEN_SLEEP = """
op.execute("INSERT INTO runlog (who) VALUES ('first')")
op.create_index("ix_runlog_who", "runlog", ["who"])
op.execute("SELECT SLEEP(6)")
op.execute("INSERT INTO runlog (who) VALUES ('last')")
"""


@pytest.mark.parametrize("backend", MYSQL)
def test_killed_migrator_the_waiters_stop_and_repair_lets_it_finish_mysql(
    package: AppPackage,
) -> None:
    write_slow_revisions(package, 0)  # the app, r1 (runlog); r2 replaced here
    package.write_revision("r2", "r1", DDL_THEN_SLEEP, "op.drop_index('ix_runlog_who', 'runlog')")
    migrator = popen_upgrade(package)
    wait_until(lambda: sleeping(package.url), what="the migrator's SLEEP")
    waiters = [popen_upgrade(package) for _ in range(2)]
    time.sleep(1)  # both wait for the lock
    os.kill(migrator.pid, signal.SIGKILL)
    finish(migrator)
    results = [finish(p) for p in waiters]
    for code, _, err in results:
        assert code == 1, results
        # one line, after the "Waiting ..." line of the lock wait
        assert "Traceback" not in err, err
        lines = without_database_line(err).splitlines()
        err = "\n".join(line for line in lines if not line.startswith("Waiting "))
        assert err.startswith("Error: Revision 'r2' (revision r2) was interrupted: the run of"), err
        assert "MySQL/MariaDB commits each DDL statement at once" in err
        assert "the version table is at 'r1'" in err and "flask db repair r2" in err
    assert runlog(package.url) == ["first"]  # never run again
    assert package.version() == {"r1"}
    assert journal_rows(package.url) == [("r1", 1, "applied"), ("r2", 1, "interrupted")]

    # a person checks the database, undoes the partial change and says so
    with package.engine().begin() as connection:
        connection.exec_driver_sql("DROP INDEX ix_runlog_who ON runlog")
        connection.exec_driver_sql("DELETE FROM runlog")
    assert "Marked 'r2' as rolled back" in package.run("repair").stdout
    done = package.run("upgrade")
    assert done.returncode == 0, done.stderr
    assert sorted(runlog(package.url)) == ["first", "last"]
    assert package.version() == {"r2"}
    assert [row[2] for row in journal_rows(package.url)] == [
        "applied", "interrupted", "rolled_back", "applied"
    ]  # fmt: skip


@pytest.mark.parametrize("backend", MYSQL)
def test_repair_applied_stamps_the_version_table_mysql(package: AppPackage) -> None:
    write_slow_revisions(package, 0)  # the app, r1 (runlog); r2 replaced here
    package.write_revision("r2", "r1", DDL_THEN_SLEEP.replace("SLEEP(6)", "SLEEP(4)"))
    migrator = popen_upgrade(package)
    wait_until(lambda: sleeping(package.url), what="the migrator's SLEEP")
    os.kill(migrator.pid, signal.SIGKILL)
    finish(migrator)
    stopped = package.run("upgrade")
    assert stopped.returncode == 1 and "was interrupted" in stopped.stderr
    # the person finishes the revision's work by hand, then marks it applied
    with package.engine().begin() as connection:
        connection.exec_driver_sql("INSERT INTO runlog (who) VALUES ('last')")
    repaired = package.run("repair", "r2", "--applied")
    assert repaired.returncode == 0, repaired.stderr
    assert (
        repaired.stdout == "Marked 'r2' as applied (journal and version table); nothing was run.\n"
    )
    assert package.version() == {"r2"}
    assert package.run("upgrade").returncode == 0
    assert sorted(runlog(package.url)) == ["first", "last"]
    again = package.run("repair", "r2")
    assert again.returncode == 1
    assert "Nothing to repair for revision 'r2': the journal says 'applied'" in again.stderr
