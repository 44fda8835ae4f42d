"""Session-scoped clusters: started once per test session, on first use, and stopped at
its end. Reusable by any test under tests/clusters/.

``galera_cluster``
    Three MariaDB Galera nodes (Debian's ``galera-4``, ``rsync`` state transfers).
``pgbouncer``
    PgBouncer in transaction pooling mode in front of the shared PostgreSQL server
    (``ENTITYDB_TEST_POSTGRESQL_URL``).

Missing tools skip the tests, or fail them with ``ENTITYDB_TEST_REQUIRE_SERVERS=1``.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.databases import create_database, require_tool, server_url
from helpers.galera import GaleraCluster, galera_provider
from helpers.pgbouncer import PGBOUNCER, PgBouncer
from helpers.servers import MARIADBD


@pytest.fixture(scope="session")
def galera_cluster() -> Iterator[GaleraCluster]:
    """A running 3-node Galera cluster; a test that stops a node starts it again."""
    require_tool(MARIADBD, "mariadbd")
    require_tool(shutil.which("rsync"), "rsync (Galera state transfers)")
    provider = galera_provider()
    if provider is None:
        require_tool(None, "galera-4 (libgalera_smm.so)")
        raise AssertionError("unreachable")
    cluster = GaleraCluster.create(provider)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def galera_database(galera_cluster: GaleraCluster) -> Iterator[str]:
    """Name of a fresh database on the cluster (created on node 1, replicated)."""
    name = f"edb_{secrets.token_hex(6)}"
    galera_cluster.execute(f"CREATE DATABASE {name}")
    yield name
    galera_cluster.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="session")
def pgbouncer() -> Iterator[PgBouncer]:
    """PgBouncer (transaction pooling) in front of the shared PostgreSQL server."""
    require_tool(PGBOUNCER, "pgbouncer")
    bouncer = PgBouncer.create(server_url("postgresql"))
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.dispose()


@pytest.fixture
def pgbouncer_database(pgbouncer: PgBouncer, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fresh database on the shared PostgreSQL: ``(direct URL, URL through PgBouncer)``."""
    url, drop = create_database("postgresql", tmp_path)
    yield url, pgbouncer.url(url)
    drop()
