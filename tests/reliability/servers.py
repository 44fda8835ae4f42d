"""Private MariaDB servers and TLS certificates for the reliability suite."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

MARIADBD = os.environ.get("ENTITYDB_TEST_MARIADBD", "/usr/sbin/mariadbd")
START_TIMEOUT = 60.0


def require_tool(path: str | None, what: str) -> str:
    if path and os.access(path, os.X_OK):
        return path
    message = f"{what} is not installed; the reliability suite starts private servers with it"
    if os.environ.get("ENTITYDB_TEST_REQUIRE_SERVERS") == "1":
        pytest.fail(message + " (ENTITYDB_TEST_REQUIRE_SERVERS=1)")
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TLSFiles:
    """Certificates made for the session."""

    ca: Path
    """The test CA that signed :attr:`server_cert`."""
    server_cert: Path
    server_key: Path
    wrong_ca: Path
    """A CA that signed nothing this suite's servers use."""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_tls_files(d: Path) -> TLSFiles:
    """Make a CA, a server certificate signed by it for 127.0.0.1, and an unrelated CA in
    the directory ``d`` with ``openssl``."""
    require_tool(shutil.which("openssl"), "openssl")
    for name in ("ca", "wrong-ca"):
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-subj", f"/CN=flask-entitydb {name}", cwd=d,
        )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d,
    )  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "server.pem", cwd=d,
    )  # fmt: skip
    return TLSFiles(
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        wrong_ca=d / "wrong-ca.pem",
    )


@dataclass
class MariaDBServer:
    """One private ``mariadbd`` on 127.0.0.1 with its own data directory.

    ``root`` connects from 127.0.0.1 without a password; :attr:`app_password` belongs to
    the user ``app`` (all privileges), for tests that must prove a password never leaks.
    """

    base_dir: Path
    port: int
    options: tuple[str, ...]
    app_password: str
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _admin: sa.Engine | None = field(default=None, repr=False)

    @property
    def datadir(self) -> Path:
        return self.base_dir / "data"

    @property
    def error_log(self) -> Path:
        return self.base_dir / "error.log"

    def url(
        self,
        database: str = "test",
        *,
        user: str = "root",
        password: str | None = None,
        **query: str,
    ) -> str:
        """A ``mysql+mysqldb://`` URL of this server, with ``query`` parameters."""
        url = sa.URL.create(
            "mysql+mysqldb",
            username=user,
            password=password,
            host="127.0.0.1",
            port=self.port,
            database=database,
            query=query,
        )
        return url.render_as_string(hide_password=False)

    def app_url(self, database: str = "test", **query: str) -> str:
        """URL for the password-protected user ``app``."""
        return self.url(database, user="app", password=self.app_password, **query)

    def _command(self) -> list[str]:
        command = [
            MARIADBD,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.base_dir / 'mysqld.sock'}",
            f"--pid-file={self.base_dir / 'mysqld.pid'}",
            f"--log-error={self.error_log}",
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--performance-schema=OFF",
            "--max-connections=200",
            *self.options,
        ]
        if os.geteuid() == 0:
            command.append("--user=root")
        return command

    def initialize(self) -> None:
        """Create the data directory (``mariadb-install-db``)."""
        install = require_tool(shutil.which("mariadb-install-db"), "mariadb-install-db")
        self.datadir.mkdir(parents=True)
        command = [
            install,
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--innodb-log-file-size=16M",
        ]
        if os.geteuid() == 0:
            command.append("--user=root")
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{result.stdout}{result.stderr}")

    def start(self) -> None:
        """Start ``mariadbd`` and wait until root can connect."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        import MySQLdb

        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited at start:\n{self.log_tail()}")
            try:
                MySQLdb.connect(
                    host="127.0.0.1", port=self.port, user="root", connect_timeout=2
                ).close()
                break
            except MySQLdb.OperationalError:
                if time.monotonic() > deadline:
                    self.stop(crash=True)
                    raise RuntimeError(f"mariadbd did not come up:\n{self.log_tail()}") from None
                time.sleep(0.05)
        self.starts += 1

    def stop(self, *, crash: bool = False) -> None:
        """Stop the server: ``SIGTERM`` (clean shutdown) or, with ``crash``, ``SIGKILL``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def restart(self, *, crash: bool = False, down_seconds: float = 0.0) -> None:
        """Stop, stay down for ``down_seconds``, start again on the same port and data."""
        self.stop(crash=crash)
        time.sleep(down_seconds)
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no error log)"

    def admin(self) -> sa.Engine:
        """An AUTOCOMMIT, unpooled root engine for inspecting and setting up the server."""
        if self._admin is None:
            self._admin = sa.create_engine(
                self.url("mysql"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
            )
        return self._admin

    def execute(self, sql: str, **params: Any) -> list[sa.Row[Any]]:
        """Run ``sql`` as root; return its rows (empty for statements without)."""
        with self.admin().connect() as conn:
            result = conn.execute(sa.text(sql), params)
            return list(result) if result.returns_rows else []

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its name."""
        name = name or f"edb_{secrets.token_hex(6)}"
        self.execute(f"CREATE DATABASE {name}")
        return name
