"""The migration lock behind PgBouncer in transaction pooling mode, where a session-level
advisory lock lands on whichever server connection PgBouncer lends (before: concurrent
upgrades through PgBouncer applied the same revision more than once)."""

from __future__ import annotations

import json

import pytest
from helpers.lock_scenario import (
    columns,
    finish_all,
    lock_lines,
    popen_upgrade,
    runlog,
    write_slow_revisions,
)
from helpers.migration_apps import AppPackage

pytestmark = [pytest.mark.postgresql, pytest.mark.pgbouncer]

# psycopg's automatic prepared statements do not survive transaction pooling
OPTIONS = {
    "TESTAPP_ENTITYDB_ENGINE_OPTIONS": json.dumps({"connect_args": {"prepare_threshold": None}})
}


@pytest.fixture
def package_url(pgbouncer_database: tuple[str, str]) -> str:
    return pgbouncer_database[1]  # through PgBouncer


def test_concurrent_upgrades_through_pgbouncer_apply_each_revision_once_postgresql(
    package: AppPackage, pgbouncer_database: tuple[str, str]
) -> None:
    direct, through = pgbouncer_database
    write_slow_revisions(package, 2, third=True)
    processes = [popen_upgrade(package, through, "-v", extra_env=OPTIONS) for _ in range(6)]
    results = finish_all(processes)
    assert len(runlog(direct)) == 2, results
    assert {"extra", "extra3"} <= columns(direct)
    lines = lock_lines(results)
    assert len(lines) == 6
    assert all("lease row" in line and "PgBouncer" in line for line in lines)
    assert all("the server listens on port" in line for line in lines), lines
    applied = [out.count("Applied ") for _, out, _ in results]
    assert sum(applied) == 3, results
