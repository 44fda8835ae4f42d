"""A Galera migrator paused (``SIGSTOP``) past its lease while another upgrade takes the
lease over and finishes, then resumed (``SIGCONT``): the lease check before its next
statement that commits implicitly (the revision's ``ADD COLUMN``) stops it before that
statement runs, with one line saying that it lost the migration lock and that nothing of
the revision was committed (issue 24, case 3: it said "Revision 'r2' failed: (1213,
Deadlock ...) ... may hold a partial change" before); each revision ran exactly once."""

from __future__ import annotations

import os
import signal

import pytest
import sqlalchemy as sa
from helpers.galera import GaleraCluster
from helpers.journal import journal_rows
from helpers.lock_scenario import (
    columns,
    error_lines,
    finish,
    popen_upgrade,
    runlog,
    sleeping,
    wait_until,
    write_slow_revisions,
)
from helpers.migration_apps import AppPackage

from .test_galera_lock import LEASE, _lease_owner, _urls

pytestmark = [pytest.mark.galera, pytest.mark.private_server, pytest.mark.slow]


@pytest.fixture
def package_url(galera_cluster: GaleraCluster, galera_database: str) -> str:
    return galera_cluster.nodes[0].url(galera_database)


def _version(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            return [str(row[0]) for row in rows]
    finally:
        engine.dispose()


def test_a_paused_migrator_resumed_after_a_takeover_says_it_lost_the_lease_mysql(
    package: AppPackage, galera_cluster: GaleraCluster, galera_database: str
) -> None:
    write_slow_revisions(package, 3)
    urls = _urls(galera_cluster, galera_database)
    holder = popen_upgrade(package, urls[0], extra_env=LEASE)
    try:
        wait_until(lambda: sleeping(urls[0]), what="the holder's slow revision")
        owner = _lease_owner(urls[0])
        assert owner is not None and owner.endswith(f"pid {holder.pid}")
        os.kill(holder.pid, signal.SIGSTOP)  # its lease is not renewed from now on
        takeover = popen_upgrade(package, urls[1], "-v", extra_env=LEASE)
        code, out, err = finish(takeover)
        assert code == 0, (out, err)
        assert f"taken over from '{owner}'" in out, out
        assert "was interrupted (the run of" in err, err
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    code, out, err = finish(holder)
    lines = error_lines(err)
    assert code == 1, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "lost the migration lock" in lines[0], err
    assert "partial change" not in err and "may have committed" not in err, err
    assert lines[0].startswith(
        "Error: Revision 'r2' stopped before its next schema change because this run lost"
        " the migration lock while it ran (lease 'flask_entitydb_migrate:"
    ), err
    assert "nothing of it was committed" in lines[0], err
    for url in urls:  # r2 ran once: one runlog row (the takeover's), its column once
        assert runlog(url) == [str(takeover.pid)], (url, err)
        assert "extra" in columns(url)
        assert _version(url) == ["r2"]
    # the journal agrees: the paused run's attempt interrupted (the takeover found it),
    # the takeover's applied
    rows = journal_rows(urls[1])
    assert [state for revision, _, state in rows if revision == "r2"] == [
        "interrupted",
        "applied",
    ], rows
