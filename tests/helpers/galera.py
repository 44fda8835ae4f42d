"""A MariaDB Galera cluster of private ``mariadbd`` nodes on loopback ports.

Debian's ``galera-4`` provides the provider library; state transfers use ``rsync``. The
nodes run as the ``mysql`` user (the SST scripts need a user that owns the data), with
their data under a directory of their own in ``/tmp``. The first node bootstraps the
cluster (``--wsrep-new-cluster``), the others join it and receive its data by SST.
"""

from __future__ import annotations

import os
import pwd
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from helpers.ports import free_port
from helpers.servers import MARIADBD, MariaDBServer, private_dir

PROVIDERS = ("/usr/lib/galera/libgalera_smm.so", "/usr/lib/libgalera_smm.so")


def galera_provider() -> str | None:
    """The Galera provider library of the ``galera-4`` package, if installed."""
    return next((path for path in PROVIDERS if os.path.exists(path)), None)


@dataclass(kw_only=True)
class GaleraNode(MariaDBServer):
    """One node: a private ``mariadbd`` with the wsrep options of its cluster; it is up
    when it is synced with the cluster."""

    index: int
    provider: str
    members: str
    """``gcomm://`` addresses of all the nodes."""
    gcomm_port: int = field(default_factory=free_port)
    ist_port: int = field(default_factory=free_port)
    sst_port: int = field(default_factory=free_port)
    bootstrap: bool = False
    """Start a new cluster (``--wsrep-new-cluster``) instead of joining one."""

    start_timeout: ClassVar[float] = 120.0
    poll_seconds: ClassVar[float] = 0.2

    @property
    def label(self) -> str:
        return f"node{self.index + 1}"

    def log_tail(self, lines: int = 40) -> str:
        return super().log_tail(lines)

    def command(self) -> list[str]:
        provider_options = (
            f"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm_port};"
            f"ist.recv_addr=127.0.0.1:{self.ist_port};"
            "gcache.size=32M;evs.inactive_timeout=PT6S;evs.suspect_timeout=PT3S"
        )
        command = [
            MARIADBD,
            *self.mariadbd_options(),
            "--user=mysql",
            "--skip-ssl",
            "--binlog-format=ROW",
            "--default-storage-engine=InnoDB",
            "--innodb-autoinc-lock-mode=2",
            "--wsrep-on=ON",
            f"--wsrep-provider={self.provider}",
            f"--wsrep-cluster-address=gcomm://{self.members}",
            "--wsrep-cluster-name=entitydb-test",
            f"--wsrep-node-name=node{self.index + 1}",
            "--wsrep-node-address=127.0.0.1",
            f"--wsrep-node-incoming-address=127.0.0.1:{self.port}",
            f"--wsrep-provider-options={provider_options}",
            "--wsrep-sst-method=rsync",
            f"--wsrep-sst-receive-address=127.0.0.1:{self.sst_port}",
        ]
        if self.bootstrap:
            command.append("--wsrep-new-cluster")
        return command

    def ready(self) -> bool:
        import MySQLdb

        try:
            connection = MySQLdb.connect(
                host="127.0.0.1", port=self.port, user="root", connect_timeout=2
            )
        except MySQLdb.OperationalError:
            return False
        try:
            cursor = connection.cursor()
            cursor.execute("SHOW STATUS LIKE 'wsrep_local_state_comment'")
            row = cursor.fetchone()
            return row is not None and row[1] == "Synced"
        except MySQLdb.OperationalError:
            return False
        finally:
            connection.close()


@dataclass
class GaleraCluster:
    """``size`` nodes in one Galera cluster; :meth:`start` brings them all up."""

    base_dir: Path
    provider: str
    size: int = 3
    nodes: list[GaleraNode] = field(default_factory=list)
    start_seconds: float = 0.0
    """How long :meth:`start` took (all nodes synced)."""

    @classmethod
    def create(cls, provider: str, size: int = 3) -> GaleraCluster:
        cluster = cls(base_dir=private_dir("entitydb-galera-"), provider=provider, size=size)
        gcomm_ports = [free_port() for _ in range(size)]
        members = ",".join(f"127.0.0.1:{port}" for port in gcomm_ports)
        for index, gcomm_port in enumerate(gcomm_ports):
            node_dir = cluster.base_dir / f"node{index + 1}"
            (node_dir / "data").mkdir(parents=True)
            cluster.nodes.append(
                GaleraNode(
                    base_dir=node_dir,
                    index=index,
                    provider=provider,
                    members=members,
                    gcomm_port=gcomm_port,
                )
            )
        return cluster

    def _chown(self) -> None:
        mysql = pwd.getpwnam("mysql")
        for root, dirs, files in os.walk(self.base_dir):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), mysql.pw_uid, mysql.pw_gid)
        os.chown(self.base_dir, mysql.pw_uid, mysql.pw_gid)

    def start_node(self, node: GaleraNode, *, bootstrap: bool = False) -> None:
        """Start ``node`` and wait until it is synced with the cluster."""
        self._chown()
        node.bootstrap = bootstrap
        node.start()

    def start(self) -> None:
        """Initialise the first node, bootstrap the cluster with it, join the others."""
        started = time.monotonic()
        self._chown()
        self.nodes[0].initialize(user="mysql", timeout=180)
        self.start_node(self.nodes[0], bootstrap=True)
        for node in self.nodes[1:]:
            self.start_node(node)
        self.start_seconds = time.monotonic() - started

    def stop_node(self, node: GaleraNode, *, crash: bool = False) -> None:
        """Stop ``node`` (``SIGTERM``: it leaves the cluster cleanly; ``crash``: SIGKILL)."""
        node.stop(crash=crash)

    def remove(self) -> None:
        """Stop every node (the last first) and remove the cluster's directory."""
        for node in reversed(self.nodes):
            node.dispose()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def cluster_size(self, node: GaleraNode | None = None) -> int:
        rows = self.execute("SHOW STATUS LIKE 'wsrep_cluster_size'", node=node)
        return int(rows[0][1])

    def execute(self, sql: str, *, node: GaleraNode | None = None, **params: Any) -> list[Any]:
        """Run ``sql`` as root on ``node`` (default: the first running one)."""
        node = node or next(n for n in self.nodes if n.running)
        return node.execute(sql, **params)
