"""``kill -9`` of ``flask db upgrade`` at random points of a four-revision upgrade, 20
trials per backend: after every kill the version table and the journal agree with the
database, the next upgrade either finishes (nothing of the interrupted revision was
committed: it says so and runs it again) or stops with one line naming the interrupted
revision, and after a person's ``repair`` every revision's data step ran exactly once.

Each revision inserts its mark, creates a table (MySQL/MariaDB commits there) and sleeps
on the server; the kill lands before, in or between revisions.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers.databases import create_database
from helpers.journal import journal_rows
from helpers.lock_scenario import finish, popen_upgrade, write_slow_revisions
from helpers.migration_apps import AppPackage, without_database_line

pytestmark = pytest.mark.slow

TRIALS = 20
REVISIONS = ["r2", "r3", "r4", "r5"]

MARKS = """
op.create_table("marks", sa.Column("rev", sa.String(8), nullable=False))
"""

STEP = """
op.execute("INSERT INTO marks (rev) VALUES ('{rev}')")
op.create_table("t_{rev}", sa.Column("id", sa.Integer, primary_key=True))
name = op.get_bind().dialect.name
if name in ("mysql", "mariadb"):
    op.execute("SELECT SLEEP(0.25)")
elif name == "postgresql":
    op.execute("SELECT pg_sleep(0.25)")
else:
    time.sleep(0.25)
"""


def _facts(url: str) -> tuple[set[str], dict[str, int], set[str]]:
    """The version table, the number of marks of each revision, the revisions' tables."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            tables = set(inspector.get_table_names())
            version = (
                {
                    r[0]
                    for r in connection.exec_driver_sql("SELECT version_num FROM alembic_version")
                }
                if "alembic_version" in tables
                else set()
            )
            marks: dict[str, int] = {}
            if "marks" in tables:
                for (rev,) in connection.exec_driver_sql("SELECT rev FROM marks"):
                    marks[rev] = marks.get(rev, 0) + 1
            return version, marks, {t[2:] for t in tables if t.startswith("t_r")}
    finally:
        engine.dispose()


def _applied(version: set[str]) -> list[str]:
    if not version:
        return []
    [at] = version
    return ["r1", *REVISIONS][: ["r1", *REVISIONS].index(at) + 1]


def _check_agreement(url: str) -> None:
    """The version table and the journal agree with what is in the database."""
    version, marks, tables = _facts(url)
    applied = _applied(version)
    last = {rev: state for rev, _, state in journal_rows(url)}
    for rev in applied:
        assert last.get(rev) == "applied", (rev, last)
        if rev != "r1":
            assert marks.get(rev) == 1 and rev in tables, (rev, marks, tables)
    for rev in REVISIONS:
        if rev in applied:
            continue
        assert last.get(rev) in (None, "running", "interrupted", "rolled_back"), (rev, last)
        assert marks.get(rev, 0) <= 1, (rev, marks)
        if last.get(rev) is None:
            assert marks.get(rev, 0) == 0 and rev not in tables, (rev, marks, tables)


def _repair_as_a_person(package: AppPackage, url: str, rev: str) -> None:
    """What someone does after checking the database: the revision's mark and table are
    both there (its work is done), or whatever is there of it is undone."""
    _, marks, tables = _facts(url)
    if rev == "r1":
        # r1 only creates 'marks' (one statement): its work is done when the table is there
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.connect() as connection:
            done = sa.inspect(connection).has_table("marks")
        engine.dispose()
    else:
        done = marks.get(rev) == 1 and rev in tables
    if done:
        result = package.run("repair", rev, "--applied")
    else:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DELETE FROM marks WHERE rev = '{rev}'")
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS t_{rev}")
        engine.dispose()
        result = package.run("repair", rev)
    assert result.returncode == 0, result.stderr


def _trial(package: AppPackage, url: str, rng: random.Random) -> str:
    process = popen_upgrade(package)
    time.sleep(rng.uniform(0.8, 3.2))
    os.kill(process.pid, signal.SIGKILL)
    finish(process)
    _check_agreement(url)
    again = package.run("upgrade")
    outcome = "finished"
    if again.returncode != 0:
        err = without_database_line(again.stderr)
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith("Error: Revision '"), err
        assert "was interrupted" in err and "flask db repair" in err, err
        rev = err.split("'")[1]
        _check_agreement(url)
        _repair_as_a_person(package, url, rev)
        again = package.run("upgrade")
        assert again.returncode == 0, again.stderr
        outcome = f"stopped at {rev}"
    version, marks, tables = _facts(url)
    assert version == {"r5"}
    assert marks == dict.fromkeys(REVISIONS, 1), marks
    assert tables == set(REVISIONS)
    _check_agreement(url)
    return outcome


def test_kill_9_at_random_points_never_runs_a_revision_twice(
    package: AppPackage, backend: str, tmp_path: Path
) -> None:
    write_slow_revisions(package, 0)
    package.write_revision("r1", None, MARKS)
    down = "r1"
    for rev in REVISIONS:
        package.write_revision(rev, down, STEP.format(rev=rev))
        down = rev
    rng = random.Random(f"journal-{backend}")
    outcomes = []
    for trial in range(TRIALS):
        url, drop = (
            (package.url, lambda: None) if trial == 0 else create_database(backend, tmp_path)
        )
        package.url = url  # the subprocesses' DB_CONNECTION_STRING
        try:
            outcomes.append(_trial(package, url, rng))
        finally:
            drop()
    print(backend, sorted(outcomes))
    assert len(outcomes) == TRIALS
