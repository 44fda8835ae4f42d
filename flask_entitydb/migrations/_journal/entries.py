"""Reading the journal: the last entry of each revision, the applied revisions' rows."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class Entry:
    """One row of the journal."""

    revision: str
    seq: int
    direction: str
    state: str
    run_id: str
    host: str
    pid: int
    db_user: str
    tool: str
    started_at: datetime.datetime
    finished_at: datetime.datetime | None
    committed_part: bool
    error: str | None
    checksum: str

    @property
    def who(self) -> str:
        """``host pid N``."""
        return f"{self.host} pid {self.pid}"

    @property
    def seconds(self) -> float | None:
        """How long it ran, when it finished."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def started(self) -> str:
        """When it started, in words (UTC)."""
        return self.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")


def entry_of(row: sa.Row[tuple[object, ...]]) -> Entry:
    """The :class:`Entry` of a row of the journal table."""
    data = dict(row._mapping)
    data["committed_part"] = bool(data["committed_part"])
    return Entry(**data)


def last_entry(connection: sa.Connection, table: sa.Table, revision: str) -> Entry | None:
    """The latest row of ``revision``, or ``None``."""
    row = connection.execute(
        sa.select(table).where(table.c.revision == revision).order_by(table.c.seq.desc()).limit(1)
    ).first()
    return None if row is None else entry_of(row)


def latest_rows(connection: sa.Connection, table: sa.Table) -> dict[str, Entry]:
    """The latest row of every revision in the journal, read in one query that returns
    one row per revision (the server picks them)."""
    newest = (
        sa.select(table.c.revision, sa.func.max(table.c.seq).label("seq"))
        .group_by(table.c.revision)
        .subquery()
    )
    query = sa.select(table).join(
        newest, sa.and_(table.c.revision == newest.c.revision, table.c.seq == newest.c.seq)
    )
    return {entry.revision: entry for entry in map(entry_of, connection.execute(query))}


def last_entries(connection: sa.Connection, table: sa.Table) -> dict[str, Entry]:
    """The latest row of every revision in the journal."""
    latest: dict[str, Entry] = {}
    for row in connection.execute(sa.select(table).order_by(table.c.revision, table.c.seq)):
        entry = entry_of(row)
        latest[entry.revision] = entry
    return latest


def all_entries(connection: sa.Connection, table: sa.Table) -> dict[str, list[Entry]]:
    """Every row of every revision, oldest first."""
    found: dict[str, list[Entry]] = {}
    for row in connection.execute(sa.select(table).order_by(table.c.revision, table.c.seq)):
        entry = entry_of(row)
        found.setdefault(entry.revision, []).append(entry)
    return found


def last_applied(connection: sa.Connection, table: sa.Table) -> dict[str, Entry]:
    """The latest ``applied`` upgrade (or stamp) row of every revision."""
    latest: dict[str, Entry] = {}
    query = (
        sa.select(table)
        .where(table.c.state == "applied", table.c.direction != "downgrade")
        .order_by(table.c.revision, table.c.seq)
    )
    for row in connection.execute(query):
        entry = entry_of(row)
        latest[entry.revision] = entry
    return latest


def table_exists(connection: sa.Connection, name: str) -> bool:
    """Whether the journal table ``name`` exists yet."""
    return sa.inspect(connection).has_table(name)


def with_changes(entry: Entry, **changes: object) -> Entry:
    """``entry`` with ``changes`` to its fields (the row as this run rewrote it)."""
    return Entry(**{**entry.__dict__, **changes})
