"""The migration journal on a 3-node Galera cluster: six upgrades over the three nodes,
the lease holder killed (``kill -9``) in the middle of a revision. The process that takes
the lease over finds the killed run's ``running`` row: nothing of that revision was
committed (it ran no DDL yet), so it says so and runs it again; every revision's data
step ran exactly once on every node."""

from __future__ import annotations

import os
import signal

import pytest
from helpers.galera import GaleraCluster
from helpers.journal import journal_rows
from helpers.lock_scenario import (
    columns,
    finish,
    popen_upgrade,
    runlog,
    sleeping,
    wait_until,
    write_slow_revisions,
)
from helpers.migration_apps import AppPackage

from .test_galera_lock import LEASE, _lease_owner, _urls

pytestmark = pytest.mark.galera


@pytest.fixture
def package_url(galera_cluster: GaleraCluster, galera_database: str) -> str:
    return galera_cluster.nodes[0].url(galera_database)


def test_six_upgrades_with_the_migrator_killed_mid_revision_mysql(
    package: AppPackage, galera_cluster: GaleraCluster, galera_database: str
) -> None:
    write_slow_revisions(package, 6, third=True)
    urls = _urls(galera_cluster, galera_database)
    processes = [popen_upgrade(package, urls[i % 3], extra_env=LEASE) for i in range(6)]
    wait_until(lambda: any(sleeping(url) for url in urls), what="a slow revision")
    owner = _lease_owner(urls[0])
    assert owner is not None
    [holder] = [p for p in processes if owner.endswith(f"pid {p.pid}")]
    os.kill(holder.pid, signal.SIGKILL)
    finish(holder)
    results = [finish(p) for p in processes if p is not holder]
    assert [code for code, _, _ in results] == [0] * 5, results
    stderr = "".join(err for _, _, err in results)
    assert stderr.count("was interrupted (the run of") == 1, stderr
    assert "none of it was committed (its transaction rolled back), so it runs again now" in stderr
    for url in urls:
        assert len(runlog(url)) == 2, results  # r2 and r3, once each
        assert {"extra", "extra3"} <= columns(url)
    states = [state for _, _, state in journal_rows(urls[1])]
    assert states.count("interrupted") == 1 and states.count("running") == 0, states
