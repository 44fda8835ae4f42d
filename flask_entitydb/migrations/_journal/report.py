"""What the commands that read the database show from the journal: every attempt of each
revision, when, by whom, how long and how it ended (``history -v``, ``current -v``), and
the applied revisions edited since (``check``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from flask_entitydb.migrations._connections import closed_after
from flask_entitydb.migrations._journal.checks import EditedRevision, edited_revisions
from flask_entitydb.migrations._journal.entries import Entry, all_entries, table_exists
from flask_entitydb.migrations._journal.table import (
    APPLIED,
    FAILED,
    INTERRUPTED,
    ROLLED_BACK,
    journal_table,
)


def journal_entries(engine: sa.Engine, table_name: str) -> dict[str, list[Entry]]:
    """Every row of every revision, oldest first (empty: no journal yet)."""
    with closed_after(engine) as connection:
        if not table_exists(connection, table_name):
            return {}
        return all_entries(connection, journal_table(table_name))


def entry_line(entry: Entry) -> str:
    """One attempt in words, for example ``Applied 2026-12-07 14:02:11 UTC by app (web-1
    pid 4711, flask-entitydb 0.2.0) in 1.23 s`` or ``Upgrade failed 2026-12-07 14:01:40
    UTC by app (web-1 pid 4702, flask-entitydb 0.2.0) after 1.02 s, rolled back: (1205,
    'Lock wait timeout exceeded; try restarting transaction')``."""
    by = f"{entry.started()} by {entry.db_user} ({entry.who}, {entry.tool})"
    took = f"{entry.seconds:.2f} s" if entry.seconds is not None else ""
    if entry.direction == "repair":
        marked = "applied" if entry.state == APPLIED else "rolled back"
        return f"Marked {marked} by 'flask db repair' {by}"
    if entry.state == APPLIED:
        verb = {"stamp": "Stamped", "downgrade": "Downgraded"}.get(entry.direction, "Applied")
        return f"{verb} {by}" + (f" in {took}" if took else "")
    step = "Downgrade" if entry.direction == "downgrade" else "Upgrade"
    partial = ", may have committed part of its changes" if entry.committed_part else ""
    error = f": {entry.error}" if entry.error else ""
    after = f" after {took}" if took else ""
    if entry.state == FAILED:
        return f"{step} failed {by}{after}{partial}{error}"
    if entry.state == ROLLED_BACK:
        return f"{step} failed {by}{after}, rolled back{error}"
    if entry.state == INTERRUPTED:
        return f"{step} interrupted {by}: its run is gone{partial}"
    return f"{step} running since {by}{partial}"


def journal_lines(entries: list[Entry]) -> str:
    """Every attempt of a revision, one line each, oldest first."""
    return "\n".join(entry_line(entry) for entry in entries)


def edited_applied_revisions(
    engine: sa.Engine, table_name: str, script: ScriptDirectory, heads: tuple[str, ...]
) -> list[EditedRevision]:
    """The applied revisions whose file changed since (empty: no journal yet)."""
    with closed_after(engine) as connection:
        return edited_revisions(connection, journal_table(table_name), script, heads)
