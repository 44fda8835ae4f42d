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
    server_id: int = 0
    """Non-zero: write a binary log (GTID replication) with this ``server_id``."""
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
            # temporary tables in the server's own folder: in the shared /tmp, servers
            # started at the same time clashed over '#sql-temptable-*' files
            f"--tmpdir={self.base_dir}",
            *(
                [f"--server-id={self.server_id}", "--log-bin=binlog", "--binlog-format=ROW"]
                if self.server_id
                else ["--skip-log-bin"]
            ),
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
            f"--tmpdir={self.base_dir}",
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

    def replicate_from(self, primary: MariaDBServer) -> None:
        """Make this server a GTID replica of ``primary`` (both started with a
        ``server_id``) and start replicating from the primary's first transaction."""
        self.execute("STOP SLAVE")
        self.execute("RESET SLAVE ALL")
        self.execute("SET GLOBAL gtid_slave_pos = ''")
        self.execute(
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port},"
            " MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos,"
            " MASTER_CONNECT_RETRY=1"
        )
        self.execute("START SLAVE")


def _pg_bindir() -> str | None:
    configured = os.environ.get("ENTITYDB_TEST_PG_BINDIR")
    if configured:
        return configured
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30)
    return result.stdout.strip() or None


PG_BINDIR = _pg_bindir()
"""Folder of ``initdb``, ``postgres`` and ``pg_basebackup`` (``pg_config --bindir``, or
``ENTITYDB_TEST_PG_BINDIR``)."""

PG_OS_USER = os.environ.get("ENTITYDB_TEST_PG_OS_USER", "postgres")
"""The operating system user the private PostgreSQL servers run as when the tests run as
root (PostgreSQL refuses to run as root)."""


def pg_tool(name: str) -> str:
    """The path of PostgreSQL's ``name`` program, or skip (fail under CI) without it."""
    return require_tool(os.path.join(PG_BINDIR, name) if PG_BINDIR else None, name)


def private_dir(prefix: str) -> Path:
    """A new directory that the PostgreSQL OS user owns (``tmp_path`` lives in a folder
    only root may enter, so it cannot hold a data directory for that user)."""
    import pwd
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_OS_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


@dataclass
class PostgreSQLServer:
    """One private PostgreSQL server on 127.0.0.1 with its own data directory.

    The superuser ``postgres`` connects from 127.0.0.1 without a password (``trust``);
    :attr:`app_password` belongs to the superuser ``app`` (``scram-sha-256``), for tests
    that must prove a password never leaks. Started with ``postgres`` from
    ``pg_config --bindir`` as the OS user ``postgres`` when the tests run as root.
    Make a streaming replica of a running server with :meth:`make_replica`.
    """

    base_dir: Path
    port: int
    settings: tuple[str, ...] = ()
    """Extra ``-c name=value`` server settings."""
    app_password: str = field(default_factory=lambda: "pw-" + secrets.token_urlsafe(12))
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _admin: sa.Engine | None = field(default=None, repr=False)

    @property
    def datadir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    def url(
        self,
        database: str = "test",
        *,
        user: str = "postgres",
        password: str | None = None,
        **query: str,
    ) -> str:
        """A ``postgresql+psycopg://`` URL of this server, with ``query`` parameters."""
        url = sa.URL.create(
            "postgresql+psycopg",
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

    def _run(self, command: list[str], what: str, timeout: float = 120) -> None:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=PG_OS_USER if os.geteuid() == 0 else None,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed:\n{result.stdout}{result.stderr}")

    def initialize(self) -> None:
        """Create the data directory (``initdb``): trust for 127.0.0.1 (replication
        included), scram-sha-256 for ``app``."""
        self._run(
            [
                pg_tool("initdb"),
                "-D", str(self.datadir),
                "-U", "postgres",
                "-E", "UTF8",
                "--locale=C",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=trust",
            ],
            "initdb",
        )  # fmt: skip
        hba = self.datadir / "pg_hba.conf"
        rules = hba.read_text()
        hba.write_text("host all app 127.0.0.1/32 scram-sha-256\n" + rules)

    def make_replica(self, base_dir: Path, port: int | None = None) -> PostgreSQLServer:
        """A streaming replica of this (running) server: ``pg_basebackup -R`` into
        ``base_dir``; start it with :meth:`start`."""
        replica = PostgreSQLServer(
            base_dir=base_dir,
            port=port or free_port(),
            settings=self.settings,
            app_password=self.app_password,
        )
        self._run(
            [
                pg_tool("pg_basebackup"),
                "-h", "127.0.0.1",
                "-p", str(self.port),
                "-U", "postgres",
                "-D", str(replica.datadir),
                "-R",
                "-X", "stream",
                "--no-sync",
            ],
            "pg_basebackup",
        )  # fmt: skip
        return replica

    def _command(self) -> list[str]:
        settings = [
            "listen_addresses=127.0.0.1",
            f"port={self.port}",
            f"unix_socket_directories={self.base_dir}",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "shared_buffers=16MB",
            "max_connections=100",
            "wal_level=replica",
            "max_wal_senders=10",
            "hot_standby=on",
            "hot_standby_feedback=on",
            "wal_receiver_status_interval=1s",
            "logging_collector=off",
            *self.settings,
        ]
        command = [pg_tool("postgres"), "-D", str(self.datadir)]
        for setting in settings:
            command += ["-c", setting]
        return command

    def start(self) -> None:
        """Start the server and wait until ``postgres`` can connect."""
        assert self.process is None or self.process.poll() is not None, "already running"
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self.process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                user=PG_OS_USER if os.geteuid() == 0 else None,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        import psycopg

        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{self.log_tail()}")
            try:
                psycopg.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user="postgres",
                    dbname="postgres",
                    connect_timeout=2,
                ).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop(crash=True)
                    raise RuntimeError(f"postgres did not come up:\n{self.log_tail()}") from None
                time.sleep(0.05)
        self.starts += 1

    def stop(self, *, crash: bool = False) -> None:
        """Stop the server: fast shutdown (``SIGINT``) or, with ``crash``, ``SIGKILL`` of
        the whole process group."""
        if self.process is None or self.process.poll() is not None:
            return
        if crash:
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
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
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def admin(self) -> sa.Engine:
        """An AUTOCOMMIT, unpooled superuser engine on the ``postgres`` database."""
        if self._admin is None:
            self._admin = sa.create_engine(
                self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
            )
        return self._admin

    def execute(self, sql: str, **params: Any) -> list[sa.Row[Any]]:
        """Run ``sql`` as ``postgres``; return its rows (empty for statements without)."""
        with self.admin().connect() as conn:
            result = conn.execute(sa.text(sql), params)
            return list(result) if result.returns_rows else []

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its name."""
        name = name or f"edb_{secrets.token_hex(6)}"
        self.execute(f"CREATE DATABASE {name}")
        return name

    def create_app_user(self) -> None:
        """Create the superuser ``app`` with :attr:`app_password`."""
        self.execute(f"CREATE USER app SUPERUSER PASSWORD '{self.app_password}'")

    def dispose(self) -> None:
        """Stop the server and remove its directory."""
        if self._admin is not None:
            self._admin.dispose()
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
