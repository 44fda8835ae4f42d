"""Private database servers: processes a test starts, owns, and removes.

:class:`PrivateServer` is the one way to run such a process: :meth:`~PrivateServer.start`
launches it in a session of its own and waits until it answers,
:meth:`~PrivateServer.stop` ends it (cleanly, or with ``SIGKILL`` for a crash),
:meth:`~PrivateServer.dispose` stops it and removes its directory. Subclasses say how to
launch a server and how to tell that it answers: :class:`MariaDBServer`,
:class:`PostgreSQLServer` (primary or streaming replica), ``helpers.galera.GaleraNode`` and
``helpers.pgbouncer.PgBouncer``. :class:`SQLServer` adds URLs and an admin connection.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, TypeVar

import sqlalchemy as sa

from helpers.databases import admin_engine, require_tool
from helpers.ports import free_port

MARIADBD = os.environ.get("ENTITYDB_TEST_MARIADBD", "/usr/sbin/mariadbd")


def private_dir(prefix: str, owner: str | None = None) -> Path:
    """A new directory in the system's temporary folder, owned by the OS user ``owner``
    when the tests run as root (``tmp_path`` lives in a folder only root may enter, so it
    cannot hold the data of a server that runs as another user)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    if owner is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


@dataclass(kw_only=True)
class PrivateServer:
    """One server process on 127.0.0.1 with a directory of its own (:attr:`base_dir`).

    The process runs in its own session (process group): a crash kills the group.
    """

    base_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0
    """How often :meth:`start` brought the server up."""

    program: ClassVar[str] = "server"
    """The program's name, for messages."""
    log_name: ClassVar[str] = "server.log"
    """The log file's name in :attr:`base_dir`."""
    output_to_log: ClassVar[bool] = False
    """Whether the process's stdout and stderr go to the log file (else nowhere)."""
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    """The signal of a clean shutdown."""
    start_timeout: ClassVar[float] = 60.0
    poll_seconds: ClassVar[float] = 0.05

    # -- what a subclass says -----------------------------------------------------------

    @property
    def log_file(self) -> Path:
        """The file the server logs to."""
        return self.base_dir / self.log_name

    @property
    def run_as(self) -> str | None:
        """The OS user to run the process as (``None``: this process's user)."""
        return None

    @property
    def label(self) -> str:
        return self.program

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the server answers (called until true while it starts)."""
        raise NotImplementedError

    # -- the life cycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the process and wait until :meth:`ready`."""
        assert not self.running, "already running"
        with contextlib.ExitStack() as stack:
            output: int | IO[bytes] = subprocess.DEVNULL
            if self.output_to_log:  # handed to the child process
                output = stack.enter_context(open(self.log_file, "ab"))
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
                user=self.run_as,
            )
        deadline = time.monotonic() + self.start_timeout
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited at start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop(crash=True)
                raise RuntimeError(f"{self.label} did not come up:\n{self.log_tail()}")
            time.sleep(self.poll_seconds)
        self.starts += 1

    def stop(self, *, crash: bool = False) -> None:
        """Stop the server: a clean shutdown (:attr:`stop_signal`) or, with ``crash``,
        ``SIGKILL`` of its whole process group."""
        if self.process is None or self.process.poll() is not None:
            return
        if crash:
            self._kill_group()
        else:
            self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._kill_group()
            self.process.wait(timeout=30)

    def _kill_group(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

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

    def dispose(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


Server = TypeVar("Server", bound=PrivateServer)


@contextlib.contextmanager
def disposing() -> Iterator[list[Server]]:
    """A list to put started servers in; each is disposed of on leaving, the last first."""
    servers: list[Server] = []
    try:
        yield servers
    finally:
        for server in reversed(servers):
            server.dispose()


@dataclass(kw_only=True)
class SQLServer(PrivateServer):
    """A private SQL server: URLs of it, and an admin connection as its superuser.

    :attr:`app_password` belongs to the user ``app`` (made by the fixtures), for tests that
    must prove a password never leaks.
    """

    app_password: str = field(default_factory=lambda: "pw-" + secrets.token_urlsafe(12))
    _admin: sa.Engine | None = field(default=None, repr=False)

    driver: ClassVar[str]
    superuser: ClassVar[str]
    admin_database: ClassVar[str]

    @property
    def datadir(self) -> Path:
        return self.base_dir / "data"

    def url(
        self,
        database: str = "test",
        *,
        user: str | None = None,
        password: str | None = None,
        **query: str,
    ) -> str:
        """A URL of this server (the superuser's by default), with ``query`` parameters."""
        url = sa.URL.create(
            self.driver,
            username=user or self.superuser,
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

    def admin(self) -> sa.Engine:
        """An AUTOCOMMIT, unpooled superuser engine for inspecting and setting up the
        server."""
        if self._admin is None:
            self._admin = admin_engine(self.url(self.admin_database))
        return self._admin

    def execute(self, sql: str, **params: Any) -> list[sa.Row[Any]]:
        """Run ``sql`` as the superuser; return its rows (empty for statements without)."""
        with self.admin().connect() as conn:
            result = conn.execute(sa.text(sql), params)
            return list(result) if result.returns_rows else []

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its name."""
        name = name or f"edb_{secrets.token_hex(6)}"
        self.execute(f"CREATE DATABASE {name}")
        return name

    def dispose(self) -> None:
        if self._admin is not None:
            self._admin.dispose()
        super().dispose()


# -- MariaDB ------------------------------------------------------------------------------


@dataclass(kw_only=True)
class MariaDBServer(SQLServer):
    """One private ``mariadbd`` with its own data directory.

    ``root`` connects from 127.0.0.1 without a password.
    """

    options: tuple[str, ...] = ()
    server_id: int = 0
    """Non-zero: write a binary log (GTID replication) with this ``server_id``."""

    program: ClassVar[str] = "mariadbd"
    log_name: ClassVar[str] = "error.log"
    driver: ClassVar[str] = "mysql+mysqldb"
    superuser: ClassVar[str] = "root"
    admin_database: ClassVar[str] = "mysql"

    def mariadbd_options(self) -> list[str]:
        """The options every private ``mariadbd`` starts with (``--no-defaults`` first)."""
        return [
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.base_dir / 'mysqld.sock'}",
            f"--pid-file={self.base_dir / 'mysqld.pid'}",
            f"--log-error={self.log_file}",
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--performance-schema=OFF",
            "--max-connections=200",
        ]

    def command(self) -> list[str]:
        command = [
            MARIADBD,
            *self.mariadbd_options(),
            # temporary tables in the server's own folder: in the shared /tmp, servers
            # started at the same time clashed over '#sql-temptable-*' files
            f"--tmpdir={self.base_dir}",
            *(
                [f"--server-id={self.server_id}", "--log-bin=binlog", "--binlog-format=ROW"]
                if self.server_id
                else ["--skip-log-bin"]
            ),
            *self.options,
        ]
        if os.geteuid() == 0:
            command.append("--user=root")
        return command

    def ready(self) -> bool:
        import MySQLdb

        try:
            MySQLdb.connect(
                host="127.0.0.1", port=self.port, user="root", connect_timeout=2
            ).close()
        except MySQLdb.OperationalError:
            return False
        return True

    def initialize(self, *, user: str | None = None, timeout: float = 120) -> None:
        """Create the data directory (``mariadb-install-db``), for the OS user ``user``
        (default: root when the tests run as root)."""
        install = require_tool(shutil.which("mariadb-install-db"), "mariadb-install-db")
        self.datadir.mkdir(parents=True, exist_ok=True)
        command = [
            install,
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            f"--tmpdir={self.base_dir}",
            "--innodb-log-file-size=16M",
        ]
        if user is not None or os.geteuid() == 0:
            command.append(f"--user={user or 'root'}")
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{result.stdout}{result.stderr}")

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


# -- PostgreSQL ---------------------------------------------------------------------------


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


def pg_private_dir(prefix: str) -> Path:
    """A new directory that the PostgreSQL OS user owns."""
    return private_dir(prefix, PG_OS_USER)


@dataclass(kw_only=True)
class PostgreSQLServer(SQLServer):
    """One private PostgreSQL server with its own data directory.

    The superuser ``postgres`` connects from 127.0.0.1 without a password (``trust``);
    ``app`` is a superuser with a password (``scram-sha-256``). Started with ``postgres``
    from ``pg_config --bindir`` as the OS user ``postgres`` when the tests run as root.
    Make a streaming replica of a running server with :meth:`make_replica`.
    """

    settings: tuple[str, ...] = ()
    """Extra ``-c name=value`` server settings."""

    program: ClassVar[str] = "postgres"
    log_name: ClassVar[str] = "postgres.log"
    output_to_log: ClassVar[bool] = True
    stop_signal: ClassVar[signal.Signals] = signal.SIGINT  # fast shutdown
    driver: ClassVar[str] = "postgresql+psycopg"
    superuser: ClassVar[str] = "postgres"
    admin_database: ClassVar[str] = "postgres"

    @property
    def run_as(self) -> str | None:
        return PG_OS_USER if os.geteuid() == 0 else None

    def _run(self, command: list[str], what: str, timeout: float = 120) -> None:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, user=self.run_as
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

    def command(self) -> list[str]:
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

    def ready(self) -> bool:
        import psycopg

        try:
            psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user="postgres",
                dbname="postgres",
                connect_timeout=2,
            ).close()
        except psycopg.OperationalError:
            return False
        return True

    def create_app_user(self) -> None:
        """Create the superuser ``app`` with :attr:`app_password`."""
        self.execute(f"CREATE USER app SUPERUSER PASSWORD '{self.app_password}'")
