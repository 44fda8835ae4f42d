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
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from reliability.servers import MARIADBD, free_port

PROVIDERS = ("/usr/lib/galera/libgalera_smm.so", "/usr/lib/libgalera_smm.so")
START_TIMEOUT = 120.0


def galera_provider() -> str | None:
    """The Galera provider library of the ``galera-4`` package, if installed."""
    return next((path for path in PROVIDERS if os.path.exists(path)), None)


@dataclass
class GaleraNode:
    """One node: its data directory, its ports and its process."""

    index: int
    base_dir: Path
    port: int
    gcomm_port: int
    ist_port: int
    sst_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.base_dir / "data"

    @property
    def error_log(self) -> Path:
        return self.base_dir / "error.log"

    def url(self, database: str = "test") -> str:
        return f"mysql+mysqldb://root@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no error log)"


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
        base = Path(tempfile.mkdtemp(prefix="entitydb-galera-"))
        os.chmod(base, 0o755)
        cluster = cls(base_dir=base, provider=provider, size=size)
        for index in range(size):
            node_dir = base / f"node{index + 1}"
            (node_dir / "data").mkdir(parents=True)
            cluster.nodes.append(
                GaleraNode(index, node_dir, free_port(), free_port(), free_port(), free_port())
            )
        return cluster

    def _chown(self) -> None:
        mysql = pwd.getpwnam("mysql")
        for root, dirs, files in os.walk(self.base_dir):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), mysql.pw_uid, mysql.pw_gid)
        os.chown(self.base_dir, mysql.pw_uid, mysql.pw_gid)

    def _command(self, node: GaleraNode, *, bootstrap: bool) -> list[str]:
        members = ",".join(f"127.0.0.1:{n.gcomm_port}" for n in self.nodes)
        provider_options = (
            f"gmcast.listen_addr=tcp://127.0.0.1:{node.gcomm_port};"
            f"ist.recv_addr=127.0.0.1:{node.ist_port};"
            "gcache.size=32M;evs.inactive_timeout=PT6S;evs.suspect_timeout=PT3S"
        )
        command = [
            MARIADBD,
            "--no-defaults",
            "--user=mysql",
            f"--datadir={node.datadir}",
            f"--socket={node.base_dir / 'mysqld.sock'}",
            f"--pid-file={node.base_dir / 'mysqld.pid'}",
            f"--log-error={node.error_log}",
            "--bind-address=127.0.0.1",
            f"--port={node.port}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--performance-schema=OFF",
            "--max-connections=200",
            "--skip-ssl",
            "--binlog-format=ROW",
            "--default-storage-engine=InnoDB",
            "--innodb-autoinc-lock-mode=2",
            "--wsrep-on=ON",
            f"--wsrep-provider={self.provider}",
            f"--wsrep-cluster-address=gcomm://{members}",
            "--wsrep-cluster-name=entitydb-test",
            f"--wsrep-node-name=node{node.index + 1}",
            "--wsrep-node-address=127.0.0.1",
            f"--wsrep-node-incoming-address=127.0.0.1:{node.port}",
            f"--wsrep-provider-options={provider_options}",
            "--wsrep-sst-method=rsync",
            f"--wsrep-sst-receive-address=127.0.0.1:{node.sst_port}",
        ]
        if bootstrap:
            command.append("--wsrep-new-cluster")
        return command

    def _initialize_first(self) -> None:
        install = shutil.which("mariadb-install-db")
        assert install is not None, "mariadb-install-db is not installed"
        node = self.nodes[0]
        result = subprocess.run(
            [
                install,
                "--no-defaults",
                "--user=mysql",
                f"--datadir={node.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--innodb-log-file-size=16M",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{result.stdout}{result.stderr}")

    def start_node(self, node: GaleraNode, *, bootstrap: bool = False) -> None:
        """Start ``node`` and wait until it is synced with the cluster."""
        assert not node.running, "already running"
        self._chown()
        node.process = subprocess.Popen(
            self._command(node, bootstrap=bootstrap),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._synced(node):
            if node.process.poll() is not None:
                raise RuntimeError(f"node{node.index + 1} exited at start:\n{node.log_tail()}")
            if time.monotonic() > deadline:
                self.stop_node(node, crash=True)
                raise RuntimeError(f"node{node.index + 1} did not sync:\n{node.log_tail()}")
            time.sleep(0.2)

    def _synced(self, node: GaleraNode) -> bool:
        import MySQLdb

        try:
            connection = MySQLdb.connect(
                host="127.0.0.1", port=node.port, user="root", connect_timeout=2
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

    def start(self) -> None:
        """Initialise the first node, bootstrap the cluster with it, join the others."""
        started = time.monotonic()
        self._initialize_first()
        self.start_node(self.nodes[0], bootstrap=True)
        for node in self.nodes[1:]:
            self.start_node(node)
        self.start_seconds = time.monotonic() - started

    def stop_node(self, node: GaleraNode, *, crash: bool = False) -> None:
        """Stop ``node`` (``SIGTERM``: it leaves the cluster cleanly; ``crash``: SIGKILL)."""
        if node.process is None or node.process.poll() is not None:
            return
        node.process.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
        try:
            node.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(timeout=30)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            self.stop_node(node)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def cluster_size(self, node: GaleraNode | None = None) -> int:
        rows = self.execute("SHOW STATUS LIKE 'wsrep_cluster_size'", node=node)
        return int(rows[0][1])

    def execute(self, sql: str, *, node: GaleraNode | None = None, **params: Any) -> list[Any]:
        """Run ``sql`` as root on ``node`` (default: the first running one)."""
        node = node or next(n for n in self.nodes if n.running)
        engine = sa.create_engine(
            node.url("mysql"), poolclass=sa.NullPool, isolation_level="AUTOCOMMIT"
        )
        try:
            with engine.connect() as connection:
                result = connection.execute(sa.text(sql), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()
