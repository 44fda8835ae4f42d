"""The migration lock on a 3-node MariaDB Galera cluster, where ``GET_LOCK`` is
node-local: the lease keeps every revision exactly-once (before: six upgrades over three
nodes ran the same revision several times and failed with "Table ... already exists")."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import sqlalchemy as sa
from helpers.galera import GaleraCluster
from helpers.lock_scenario import (
    columns,
    finish,
    finish_all,
    lock_lines,
    popen_upgrade,
    runlog,
    sleeping,
    wait_until,
    write_slow_revisions,
)
from helpers.migration_apps import AppPackage, without_database_line

pytestmark = pytest.mark.galera

LEASE = {"TESTAPP_ENTITYDB_MIGRATION_LEASE_SECONDS": "4"}


@pytest.fixture
def package_url(galera_cluster: GaleraCluster, galera_database: str) -> str:
    return galera_cluster.nodes[0].url(galera_database)


def _urls(cluster: GaleraCluster, database: str) -> list[str]:
    return [node.url(database) for node in cluster.nodes]


def _lease_owner(url: str) -> str | None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT owner FROM flask_entitydb_lock").scalar()  # type: ignore[no-any-return]
    except sa.exc.DBAPIError:
        return None
    finally:
        engine.dispose()


def test_six_upgrades_over_three_nodes_apply_each_revision_once_mysql(
    package: AppPackage, galera_cluster: GaleraCluster, galera_database: str
) -> None:
    write_slow_revisions(package, 2, third=True)
    urls = _urls(galera_cluster, galera_database)
    processes = [popen_upgrade(package, urls[i % 3], "-v") for i in range(6)]
    results = finish_all(processes)
    for url in urls:  # every node has the schema, once
        assert len(runlog(url)) == 2, results
        assert {"extra", "extra3"} <= columns(url)
    lines = lock_lines(results)
    assert len(lines) == 6
    assert all("lease row" in line and "Galera cluster of 3 node(s)" in line for line in lines)
    applied = [out.count("Applied ") for _, out, _ in results]
    assert sum(applied) == 3 and applied.count(0) >= 3, results


def test_rsu_schema_upgrades_are_refused_mysql(
    package: AppPackage, galera_cluster: GaleraCluster, galera_database: str
) -> None:
    write_slow_revisions(package, 0)
    node = galera_cluster.nodes[1]
    galera_cluster.execute("SET GLOBAL wsrep_OSU_method = 'RSU'", node=node)
    try:
        code, out, err = finish(popen_upgrade(package, node.url(galera_database)))
    finally:
        galera_cluster.execute("SET GLOBAL wsrep_OSU_method = 'TOI'", node=node)
    assert code == 1, (out, err)
    err = without_database_line(err)
    assert err.startswith("Error: The Galera node applies schema changes with")
    assert "wsrep_OSU_method=RSU" in err and "TOI" in err and err.count("\n") == 1
    assert "runlog" not in sa.inspect(sa.create_engine(node.url(galera_database))).get_table_names()


def test_kill_9_of_the_lease_holder_another_node_takes_over_mysql(
    package: AppPackage, galera_cluster: GaleraCluster, galera_database: str
) -> None:
    write_slow_revisions(package, 15)
    urls = _urls(galera_cluster, galera_database)
    holder = popen_upgrade(package, urls[0], extra_env=LEASE)
    wait_until(lambda: sleeping(urls[0]), what="the holder's slow revision")
    owner = _lease_owner(urls[0])
    assert owner is not None and owner.endswith(f"pid {holder.pid}")
    waiters = [popen_upgrade(package, url, "-v", extra_env=LEASE) for url in urls[1:]]
    for waiter in waiters:  # both are waiting for the lease
        assert waiter.stderr is not None
        line = waiter.stderr.readline()
        if line.startswith("Database: "):  # the command names its database first
            line = waiter.stderr.readline()
        assert line.startswith("Waiting up to 60 s for the migration lease"), line
        assert f"held by '{owner}'" in line, line
    os.kill(holder.pid, signal.SIGKILL)
    killed = time.monotonic()
    finish(holder, timeout=30)  # reaps it and closes its pipes
    takeover = wait_until(
        lambda: _lease_owner(urls[1]) not in (None, owner), timeout=30, what="a takeover"
    )
    print(f"lease taken over {takeover:.1f} s after kill -9 (lease: 4 s)")
    assert takeover < 4 + 5
    results = [finish(p) for p in waiters]
    assert [code for code, _, _ in results] == [0, 0], results
    assert any("taken over from" in out for _, out, _ in results), results
    assert time.monotonic() - killed < 60
    for url in urls:
        assert len(runlog(url)) == 1, results
        assert "extra" in columns(url)


def test_a_node_leaving_mid_run_mysql(
    package: AppPackage, galera_cluster: GaleraCluster, galera_database: str
) -> None:
    """Node 3 leaves while node 1 migrates and processes on nodes 2 and 3 wait: the one on
    node 3 fails with one line, the others finish, the revision is applied once, and node 3
    gets it when it rejoins."""
    write_slow_revisions(package, 6)
    urls = _urls(galera_cluster, galera_database)
    first = popen_upgrade(package, urls[0], extra_env=LEASE)
    wait_until(lambda: sleeping(urls[0]), what="the first upgrade's slow revision")
    second = popen_upgrade(package, urls[1], extra_env=LEASE)
    third = popen_upgrade(package, urls[2], extra_env=LEASE)
    time.sleep(1.5)
    leaving = galera_cluster.nodes[2]
    galera_cluster.stop_node(leaving)
    try:
        results = [finish(p) for p in (first, second, third)]
        assert [code for code, _, _ in results[:2]] == [0, 0], results
        code, _, err = results[2]
        # the one line of the failure, after the "Waiting ..." line if it waited for the
        # lease; nothing else (no traceback of the pool resetting a dead connection)
        lines = without_database_line(err).splitlines()
        assert code == 1 and "Traceback" not in err, results[2]
        assert lines and lines[-1].startswith("Error: "), results[2]
        assert [line for line in lines if not line.startswith("Waiting ")] == lines[-1:], results[2]
        for url in urls[:2]:
            assert len(runlog(url)) == 1, results
            assert "extra" in columns(url)
        assert galera_cluster.cluster_size() == 2
    finally:
        galera_cluster.start_node(leaving)
    assert len(runlog(urls[2])) == 1
    assert "extra" in columns(urls[2])


def test_lint_warns_that_toi_schema_changes_stall_the_cluster_mysql(
    package: AppPackage, galera_cluster: GaleraCluster
) -> None:
    write_slow_revisions(package, 0)  # r2 adds a column to runlog, created by r1
    linted = package.run("lint", "--all")
    output = " ".join((linted.stdout + linted.stderr).split())
    assert (
        "Note: Galera cluster of 3 node(s) (wsrep_OSU_method=TOI): each schema change of an"
        " existing table (runlog) runs on every node at once and blocks writes to that table"
        " cluster-wide" in output
    ), output
    assert "pt-online-schema-change" in output
    as_json = package.run("lint", "--all", "--json")
    assert any("Galera cluster of 3 node(s)" in n for n in json.loads(as_json.stdout)["notes"])
