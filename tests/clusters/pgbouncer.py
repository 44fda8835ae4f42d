"""PgBouncer in transaction pooling mode in front of a PostgreSQL server, on a free
loopback port, with a configuration directory of its own."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from reliability.servers import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@dataclass
class PgBouncer:
    """One ``pgbouncer`` process forwarding every database to ``server`` (trust auth)."""

    base_dir: Path
    port: int
    server_host: str
    server_port: int
    pool_mode: str = "transaction"
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, server: sa.URL, pool_mode: str = "transaction") -> PgBouncer:
        base = Path(tempfile.mkdtemp(prefix="entitydb-pgbouncer-"))
        os.chmod(base, 0o755)
        return cls(base, free_port(), server.host or "127.0.0.1", server.port or 5432, pool_mode)

    def url(self, server_url: str) -> str:
        """``server_url`` (a database on the server) reached through PgBouncer."""
        url = sa.make_url(server_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    def start(self) -> None:
        ini = self.base_dir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={self.server_host} port={self.server_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            f"unix_socket_dir = {self.base_dir}\n"
            "auth_type = trust\n"
            f"auth_file = {self.base_dir / 'userlist.txt'}\n"
            f"pool_mode = {self.pool_mode}\n"
            "default_pool_size = 4\n"
            "max_client_conn = 200\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.base_dir / 'pgbouncer.log'}\n"
        )
        (self.base_dir / "userlist.txt").write_text('"postgres" ""\n')
        user = pwd.getpwnam("postgres")
        for path in (self.base_dir, ini, self.base_dir / "userlist.txt"):
            os.chown(path, user.pw_uid, user.pw_gid)
        command = [PGBOUNCER, str(ini)]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "postgres"]  # PgBouncer refuses to run as root
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not come up:\n{self.log_tail()}") from None
                time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        try:
            log = (self.base_dir / "pgbouncer.log").read_text(errors="replace")
            return "\n".join(log.splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.base_dir, ignore_errors=True)
