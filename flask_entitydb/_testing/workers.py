"""The databases the pytest plugin makes for pytest-xdist workers, and its own connections.

Every worker of every run gets a database (or SQLite file) of its own, named
``<name>_<UTC time>_<run>_<worker>``, for example ``shop_test_20261202013005_3f9a1c2e_gw0``:
the time it was made, 8 hex digits of xdist's ``testrunuid`` (shared by the workers of one
run) and the worker id. Two runs against the same server therefore never meet, a run drops
only its own databases, and a database left by a crashed run is recognised by its name and
dropped by a later run once it is more than :data:`STALE_AFTER` old.

The plugin's own connections (the reachability check, ``CREATE``/``DROP DATABASE``) get the
URL handling of the app's engine (``prepare_url``): ``ssl=true``
means verified TLS there too, so a server with ``require_secure_transport=ON`` accepts them.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from flask_entitydb._testing.options import URL_SOURCE

if TYPE_CHECKING:
    import sqlalchemy as sa

STALE_AFTER = timedelta(days=1)
"""Age after which a worker database of another run counts as left behind by a crash."""

_STAMP_FORMAT = "%Y%m%d%H%M%S"
# <name>_<14-digit UTC time>_<8 hex digits of the run>_<worker>; the worker is "main"
# outside xdist (the databases of other binds, derived from the test database's name)
_WORKER_NAME = re.compile(
    r"^(?P<base>.*)_(?P<stamp>\d{14})_(?P<run>[0-9a-f]{8})_(?P<worker>gw\d+|main)$"
)
# <name>_kept_<worker>: a worker's database kept between runs (see _testing.kept)
_KEPT_NAME = re.compile(r"^(?P<base>.*)_kept_(?P<worker>gw\d+|main)$")
MAIN_WORKER = "main"
"""The worker part of the names the plugin makes outside xdist."""
# MySQL allows 64 characters in a database name, PostgreSQL 63 (it cuts longer ones)
_MAX_NAME = 63
_SQLITE_COMPANIONS = ("", "-journal", "-wal", "-shm")


@dataclass(frozen=True)
class RunTag:
    """What makes a worker's database name unique: this run, this worker, this time."""

    stamp: str
    """UTC time the worker started, ``YYYYmmddHHMMSS``."""
    run: str
    """8 hex digits of xdist's ``testrunuid``, the same for every worker of a run."""
    worker: str
    """The xdist worker id, ``gw0``, ..."""

    @classmethod
    def for_worker(cls, worker: str, testrunuid: str, now: datetime | None = None) -> RunTag:
        """The tag of ``worker`` in the run ``testrunuid`` (any string: it is hashed)."""
        now = now or datetime.now(timezone.utc)
        run = hashlib.sha256(testrunuid.encode()).hexdigest()[:8]
        return cls(now.strftime(_STAMP_FORMAT), run, worker)

    @property
    def suffix(self) -> str:
        return f"_{self.stamp}_{self.run}_{self.worker}"


def worker_database_name(base: str, tag: RunTag) -> str:
    """``<base>_<stamp>_<run>_<worker>``, with ``base`` shortened to fit the servers'
    limit on database names."""
    return base[: _MAX_NAME - len(tag.suffix)] + tag.suffix


def base_of(name: str) -> str:
    """The ``<name>`` part of a database name the plugin made (``name`` itself otherwise)."""
    match = _WORKER_NAME.match(name) or _KEPT_NAME.match(name)
    return match["base"] if match else name


def is_stale(name: str, base: str, now: datetime) -> bool:
    """Whether ``name`` is a worker database the plugin made for ``base`` (see
    :func:`worker_database_name`) more than :data:`STALE_AFTER` before ``now``."""
    match = _WORKER_NAME.match(name)
    if match is None or match["base"].lower() != base.lower():
        return False
    try:
        made = datetime.strptime(match["stamp"], _STAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return False
    return now - made > STALE_AFTER


# -- SQLite files --------------------------------------------------------------------------


def sqlite_worker_path(path: str, tag: RunTag) -> str:
    """``suite.sqlite3`` -> ``suite_<stamp>_<run>_<worker>.sqlite3`` (same folder)."""
    root, ext = os.path.splitext(path)
    return f"{root}{tag.suffix}{ext or '.sqlite3'}"


def remove_sqlite_file(path: str) -> None:
    """Delete a SQLite database file and its journal / WAL companions."""
    for companion in _SQLITE_COMPANIONS:
        Path(path + companion).unlink(missing_ok=True)


def remove_stale_sqlite_files(worker_path: str, now: datetime | None = None) -> list[str]:
    """Delete the worker files of crashed runs next to ``worker_path`` (same base name,
    older than :data:`STALE_AFTER`); return their paths."""
    now = now or datetime.now(timezone.utc)
    folder, file_name = os.path.split(worker_path)
    stem, ext = os.path.splitext(file_name)
    match = _WORKER_NAME.match(stem)
    if match is None or not os.path.isdir(folder or "."):
        return []
    removed = []
    for entry in os.scandir(folder or "."):
        other, other_ext = os.path.splitext(entry.name)
        if other_ext == ext and entry.is_file() and is_stale(other, match["base"], now):
            remove_sqlite_file(entry.path)
            removed.append(entry.path)
    return removed


# -- servers -------------------------------------------------------------------------------


def admin_engine(url: sa.URL) -> sa.Engine:
    """An unpooled ``AUTOCOMMIT`` engine for the plugin's own statements, with the URL
    handling and per-connection checks of the app's engine (``ssl=true`` is verified TLS).

    :raises ConfigurationError: the URL is invalid (for example ``ssl=maybe``).
    """
    import sqlalchemy as sa

    from flask_entitydb._engine.listeners import install_listeners
    from flask_entitydb._settings.urls import prepare_url

    prepared, defaults, tls = prepare_url(url, URL_SOURCE)
    options: dict[str, object] = {"isolation_level": "AUTOCOMMIT", "poolclass": sa.pool.NullPool}
    if "connect_args" in defaults:
        options["connect_args"] = defaults["connect_args"]
    engine = sa.create_engine(prepared, **options)
    install_listeners(engine, require_tls=tls is not None and tls.encrypt, source=URL_SOURCE)
    return engine


def _database_names(conn: sa.Connection) -> list[str]:
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        sql = "SELECT datname FROM pg_database"
    else:
        sql = "SELECT schema_name FROM information_schema.schemata"
    return [str(name) for name in conn.scalars(sa.text(sql))]


def quote(conn: sa.Connection, name: str) -> str:
    """``name`` quoted as an identifier of the server of ``conn``."""
    return conn.dialect.identifier_preparer.quote(name)


def drop_stale_databases(conn: sa.Connection, base: str, now: datetime | None = None) -> list[str]:
    """Drop the worker databases of crashed runs for ``base`` (recognised by name, older
    than :data:`STALE_AFTER`); one still in use is left alone. Returns the dropped names."""
    import sqlalchemy as sa

    now = now or datetime.now(timezone.utc)
    dropped = []
    if conn.dialect.name != "postgresql":
        # a database in use holds metadata locks: give up on it quickly, do not wait
        conn.execute(sa.text("SET SESSION lock_wait_timeout = 5"))
    for name in _database_names(conn):
        if not is_stale(name, base, now):
            continue
        try:
            # no WITH (FORCE) on PostgreSQL: a database with connections is still in use
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quote(conn, name)}"))
        except sa.exc.DBAPIError:
            continue
        dropped.append(name)
    return dropped


def create_worker_database(conn: sa.Connection, name: str, template: str | None = None) -> None:
    """``CREATE DATABASE name`` (PostgreSQL: ``TEMPLATE template``, when given); fails
    (never drops) when it exists."""
    import sqlalchemy as sa

    copy = f" TEMPLATE {quote(conn, template)}" if template else ""
    conn.execute(sa.text(f"CREATE DATABASE {quote(conn, name)}{copy}"))


def drop_database(conn: sa.Connection, name: str) -> None:
    """Drop this run's database ``name`` (on PostgreSQL also closing its connections)."""
    import sqlalchemy as sa

    force = " WITH (FORCE)" if conn.dialect.name == "postgresql" else ""
    conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quote(conn, name)}{force}"))
