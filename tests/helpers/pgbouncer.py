"""PgBouncer in transaction pooling mode in front of a PostgreSQL server, on a free
loopback port, with a configuration directory of its own."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import sqlalchemy as sa

from helpers.servers import PrivateServer, private_dir

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@dataclass(kw_only=True)
class PgBouncer(PrivateServer):
    """One ``pgbouncer`` process forwarding every database to ``server`` (trust auth)."""

    server_host: str
    server_port: int
    pool_mode: str = "transaction"

    program: ClassVar[str] = "pgbouncer"
    log_name: ClassVar[str] = "pgbouncer.log"
    start_timeout: ClassVar[float] = 30.0

    @classmethod
    def create(cls, server: sa.URL, pool_mode: str = "transaction") -> PgBouncer:
        return cls(
            base_dir=private_dir("entitydb-pgbouncer-"),
            server_host=server.host or "127.0.0.1",
            server_port=server.port or 5432,
            pool_mode=pool_mode,
        )

    def url(self, server_url: str) -> str:
        """``server_url`` (a database on the server) reached through PgBouncer."""
        url = sa.make_url(server_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    @property
    def ini(self) -> Path:
        return self.base_dir / "pgbouncer.ini"

    def start(self) -> None:
        """Write the configuration (files the ``postgres`` user owns), then start."""
        self.ini.write_text(
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
            f"logfile = {self.log_file}\n"
        )
        (self.base_dir / "userlist.txt").write_text('"postgres" ""\n')
        user = pwd.getpwnam("postgres")
        for path in (self.base_dir, self.ini, self.base_dir / "userlist.txt"):
            os.chown(path, user.pw_uid, user.pw_gid)
        super().start()

    def command(self) -> list[str]:
        command = [PGBOUNCER, str(self.ini)]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "postgres"]  # PgBouncer refuses to run as root
        return command

    def ready(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True
