"""Fixtures of the reliability suite: private MariaDB and PostgreSQL servers (primaries
and replicas) and TLS certificates.

Tests that must kill, restart or reconfigure a server get their own ``mariadbd`` or
``postgres`` (``helpers.servers``) with its own data directory, socket, pid file and free
loopback port, started here and removed at the end of the session; the tests taking these
fixtures are marked ``private_server`` (and ``replica``) by ``helpers.markers``.
Certificates are made with ``openssl`` for the session: a test CA, a server certificate
it signs (for ``127.0.0.1``/``localhost``) and an unrelated "wrong" CA.

Without ``mariadbd``/``mariadb-install-db``/``openssl`` the tests that need them skip (fail
when ``ENTITYDB_TEST_REQUIRE_SERVERS=1``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from flask import Flask
from helpers.databases import require_tool
from helpers.replication import (
    AppFactory,
    Cluster,
    Views,
    dispose_app,
    make_cluster,
    replica_app,
)
from helpers.servers import (
    MARIADBD,
    MariaDBServer,
    PostgreSQLServer,
    disposing,
    pg_private_dir,
    pg_tool,
)
from helpers.tls import TLSFiles, make_tls_files

ServerFactory = Callable[..., MariaDBServer]
PostgreSQLFactory = Callable[..., PostgreSQLServer]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A CA, a server certificate signed by it for 127.0.0.1, and an unrelated CA."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def mariadb_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerFactory]:
    """Start private MariaDB servers: ``factory(tls=None | TLSFiles, options=[...])``.

    Every server is stopped and its directory removed at the end of the session.
    """
    require_tool(MARIADBD, "mariadbd")
    with disposing() as servers:
        yield _mariadb_factory(servers, tmp_path_factory)


def _mariadb_factory(
    servers: list[MariaDBServer], tmp_path_factory: pytest.TempPathFactory
) -> ServerFactory:
    def factory(
        tls: TLSFiles | None = None,
        options: Sequence[str] = (),
        *,
        server_id: int = 0,
        replica_of: MariaDBServer | None = None,
    ) -> MariaDBServer:
        """``server_id`` turns the binary log on; ``replica_of`` (a server started with a
        ``server_id``) makes the new server its GTID replica, with the primary's users and
        databases."""
        opts = list(options)
        if tls is None:
            opts.append("--skip-ssl")
        else:
            opts += [
                f"--ssl-ca={tls.ca}",
                f"--ssl-cert={tls.server_cert}",
                f"--ssl-key={tls.server_key}",
            ]
        server = MariaDBServer(
            base_dir=tmp_path_factory.mktemp("mariadb"),
            options=tuple(opts),
            server_id=server_id or (len(servers) + 100 if replica_of else 0),
        )
        servers.append(server)
        server.initialize()
        server.start()
        if replica_of is not None:
            server.app_password = replica_of.app_password
            server.replicate_from(replica_of)
            return server
        server.execute("CREATE DATABASE test")
        server.execute("CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY :pw", pw=server.app_password)
        server.execute("GRANT ALL PRIVILEGES ON *.* TO 'app'@'127.0.0.1'")
        return server

    return factory


@pytest.fixture(scope="session")
def private_mariadb(mariadb_server_factory: ServerFactory, tls_files: TLSFiles) -> MariaDBServer:
    """A private MariaDB with TLS (the session's test CA) and ``wait_timeout=2``.

    Tests may kill its connections or restart it; it is running again when they end.
    """
    return mariadb_server_factory(tls=tls_files, options=["--wait-timeout=2"])


@pytest.fixture(scope="session")
def plain_mariadb(mariadb_server_factory: ServerFactory) -> MariaDBServer:
    """A private MariaDB that offers no TLS at all (``--skip-ssl``)."""
    return mariadb_server_factory(tls=None)


@pytest.fixture
def private_database(private_mariadb: MariaDBServer) -> Iterator[str]:
    """Name of a fresh database on :func:`private_mariadb`, dropped afterwards."""
    if not private_mariadb.running:
        private_mariadb.start()
    name = private_mariadb.create_database()
    yield name
    if not private_mariadb.running:
        private_mariadb.start()
    private_mariadb.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="session")
def postgresql_server_factory() -> Iterator[PostgreSQLFactory]:
    """Start private PostgreSQL servers: ``factory(settings=["name=value", ...])`` for a
    primary (with a database ``test`` and a password user ``app``), or
    ``factory(replica_of=server)`` for a streaming replica of a running one
    (``pg_basebackup -R``).

    Every server is stopped and its directory removed at the end of the session.
    """
    pg_tool("initdb")
    with disposing() as servers:
        yield _postgresql_factory(servers)


def _postgresql_factory(servers: list[PostgreSQLServer]) -> PostgreSQLFactory:
    def factory(
        settings: Sequence[str] = (), *, replica_of: PostgreSQLServer | None = None
    ) -> PostgreSQLServer:
        if replica_of is not None:
            server = replica_of.make_replica(pg_private_dir("edb-pg-replica-"))
            servers.append(server)
            server.start()
            return server
        server = PostgreSQLServer(base_dir=pg_private_dir("edb-pg-"), settings=tuple(settings))
        servers.append(server)
        server.initialize()
        server.start()
        server.execute("CREATE DATABASE test")
        server.create_app_user()
        return server

    return factory


@pytest.fixture(scope="session")
def postgresql_cluster(
    postgresql_server_factory: PostgreSQLFactory,
) -> tuple[PostgreSQLServer, PostgreSQLServer]:
    """A private PostgreSQL primary and its streaming replica (started once per session)."""
    primary = postgresql_server_factory()
    return primary, postgresql_server_factory(replica_of=primary)


@pytest.fixture(scope="session")
def mariadb_cluster(mariadb_server_factory: ServerFactory) -> tuple[MariaDBServer, MariaDBServer]:
    """A private MariaDB primary (binary log, GTID) and its replica (started once per
    session)."""
    primary = mariadb_server_factory(server_id=1)
    return primary, mariadb_server_factory(server_id=2, replica_of=primary)


@pytest.fixture(
    params=[
        pytest.param("mysql", id="mysql", marks=[pytest.mark.private_server, pytest.mark.replica]),
        pytest.param(
            "postgresql", id="postgresql", marks=[pytest.mark.private_server, pytest.mark.replica]
        ),
    ]
)
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A fresh database on the backend's session-wide primary + replica pair, replicating
    normally again after the test (:meth:`~helpers.replication.Cluster.heal`)."""
    if request.param == "mysql":
        primary, replica = request.getfixturevalue("mariadb_cluster")
    else:
        primary, replica = request.getfixturevalue("postgresql_cluster")
    found = make_cluster(request.param, primary, replica)
    yield found
    found.heal()


@pytest.fixture
def make_replica_app(cluster: Cluster) -> Iterator[AppFactory]:
    """``factory(views, **config)``: :func:`helpers.replication.replica_app` on ``cluster``,
    its engines disposed of after the test."""
    apps: list[Flask] = []

    def factory(views: Views | None = None, **config: Any) -> Flask:
        app = replica_app(cluster, views, **config)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        dispose_app(app)
