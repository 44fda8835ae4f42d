"""The journal table, the identity of a run and the checksum of a revision file.

One table per bind (``ENTITYDB_MIGRATION_JOURNAL_TABLE``, default
``flask_entitydb_journal``), created on first use next to Alembic's version table. Alembic
never reads it: ``alembic_version`` stays the source of truth of which revisions are
applied; the journal says how each got there (or did not).

Its primary key is ``(revision, seq)``: a run starting a revision inserts the next ``seq``
of that revision, so two runs that both believe they may start it cannot both succeed (the
row is a fence even where no lock holds, for example behind a pooler that the lock did
not recognise).
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import os
import secrets
import socket
from dataclasses import dataclass

import sqlalchemy as sa

from flask_entitydb._version import __version__
from flask_entitydb.migrations._journal.hashed_text import hashed_text

RUNNING = "running"
APPLIED = "applied"
FAILED = "failed"
INTERRUPTED = "interrupted"
ROLLED_BACK = "rolled_back"
STATES = (RUNNING, APPLIED, FAILED, INTERRUPTED, ROLLED_BACK)
"""``running``: started, not finished (or its run is gone); ``applied``; ``failed``: it
raised and may have left a partial change; ``interrupted``: its run died while it ran
(found by a later run); ``rolled_back``: it raised and the database rolled all of it back,
or a person said so with ``flask db repair``."""

ERROR_LENGTH = 2000


class _Timestamp(sa.types.TypeDecorator[datetime.datetime]):
    """``DATETIME(6)`` on MySQL/MariaDB, whose ``DATETIME`` keeps whole seconds unless
    given a fraction: microseconds, as SQLite and PostgreSQL keep them, so ``history -v``
    can say a revision took 0.12 s. (The MySQL dialect is imported only where it is the
    database's: an app on SQLite or PostgreSQL does not load it for this column.)"""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[datetime.datetime]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())


_TIMESTAMP = _Timestamp()


def journal_table(name: str) -> sa.Table:
    """The journal table named ``name`` (a metadata of its own)."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("revision", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("direction", sa.String(12), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("db_user", sa.String(128), nullable=False),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("started_at", _TIMESTAMP, nullable=False),
        sa.Column("finished_at", _TIMESTAMP, nullable=True),
        sa.Column("committed_part", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("checksum", sa.String(64), nullable=False),
    )


def is_journal_table(columns: list[str]) -> bool:
    """Whether a table with these columns is a migration journal (whatever its name)."""
    return set(columns) == {c.name for c in journal_table("journal").columns}


def create_if_missing(connection: sa.Connection, table: sa.Table) -> None:
    """Create ``table`` unless it exists; a concurrent creation by another run is fine."""
    try:
        table.create(connection, checkfirst=True)
        connection.commit()
    except sa.exc.DBAPIError:
        # two runs creating it at once (PostgreSQL: pg_type's unique index; MySQL: 1050);
        # it is there now, else this raises
        connection.rollback()
        connection.execute(sa.select(sa.func.count()).select_from(table))
        connection.commit()


def utcnow() -> datetime.datetime:
    """Now in UTC, without a time zone (the columns are ``DateTime`` without one)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class RunIdentity:
    """Who runs the migrations: written into every row the run starts."""

    run_id: str
    host: str
    pid: int
    db_user: str
    tool: str

    def describe(self) -> str:
        """``host pid N`` (what people are shown)."""
        return f"{self.host} pid {self.pid}"


def run_identity(url: sa.URL) -> RunIdentity:
    """This process's identity, connected as ``url``'s user."""
    try:
        local_user = getpass.getuser()
    except (KeyError, OSError):
        local_user = "?"
    user = f"{url.username or local_user}"
    return RunIdentity(
        run_id=secrets.token_hex(16),
        host=socket.gethostname()[:255],
        pid=os.getpid(),
        db_user=user[:128],
        tool=f"flask-entitydb {__version__}",
    )


def checksum(path: str) -> str:
    """The SHA-256 of a revision file, ignoring comments, blank lines and trailing
    whitespace (so reformatting or commenting an applied revision is not an edit)."""
    with open(path, "rb") as source:
        data = source.read()
    return hashlib.sha256(hashed_text(data).encode()).hexdigest()
