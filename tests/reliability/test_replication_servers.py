"""The private replication clusters the replica tests use: a write on the primary reaches
the replica, which is read-only."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from helpers.servers import MariaDBServer, PostgreSQLServer

pytestmark = [pytest.mark.private_server, pytest.mark.replica]


def _eventually(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s")
        time.sleep(0.05)


def test_postgresql_replica_streams_from_primary(
    postgresql_cluster: tuple[PostgreSQLServer, PostgreSQLServer],
) -> None:
    primary, replica = postgresql_cluster
    name = primary.create_database()
    engine = sa.create_engine(primary.url(name), poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id int PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO t VALUES (7)"))
    engine.dispose()
    on_replica = sa.create_engine(replica.url(name), poolclass=sa.NullPool)

    def replayed() -> bool:
        try:
            with on_replica.connect() as conn:
                return conn.scalar(sa.text("SELECT id FROM t")) == 7
        except sa.exc.OperationalError:  # the database is not there yet
            return False
        except sa.exc.ProgrammingError:  # the table is not there yet
            return False

    _eventually(replayed, "the replica did not replay the primary's write")
    assert replica.execute("SELECT pg_is_in_recovery()")[0][0] is True
    assert replica.execute("SELECT inet_server_port()")[0][0] == replica.port
    on_replica.dispose()


def test_mariadb_replica_replicates_from_primary(
    mariadb_cluster: tuple[MariaDBServer, MariaDBServer],
) -> None:
    primary, replica = mariadb_cluster
    name = primary.create_database()
    primary.execute(f"CREATE TABLE {name}.t (id int PRIMARY KEY)")
    primary.execute(f"INSERT INTO {name}.t VALUES (7)")

    def replayed() -> bool:
        try:
            return [tuple(r) for r in replica.execute(f"SELECT id FROM {name}.t")] == [(7,)]
        except sa.exc.ProgrammingError:
            return False

    _eventually(replayed, "the replica did not replay the primary's write")
    assert replica.execute("SELECT @@port")[0][0] == replica.port
    assert replica.execute("SELECT COUNT(*) FROM mysql.user WHERE user = 'app'")[0][0] == 1
