"""What the commands that read the database show from the journal: when and by whom each
revision was applied (``history -v``, ``current -v``) and the applied revisions edited
since (``check``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from flask_entitydb.migrations._connections import closed_after
from flask_entitydb.migrations._journal.checks import EditedRevision, edited_revisions
from flask_entitydb.migrations._journal.entries import Entry, last_applied, table_exists
from flask_entitydb.migrations._journal.table import journal_table


def applied_entries(engine: sa.Engine, table_name: str) -> dict[str, Entry]:
    """The latest ``applied`` row of every revision (empty: no journal yet)."""
    with closed_after(engine) as connection:
        if not table_exists(connection, table_name):
            return {}
        return last_applied(connection, journal_table(table_name))


def applied_line(entry: Entry) -> str:
    """``Applied 2026-12-07 14:02:11 UTC by app (web-1 pid 4711, flask-entitydb 0.2.0) in
    1.23 s``."""
    verb = {"stamp": "Stamped", "repair": "Marked applied by 'flask db repair'"}.get(
        entry.direction, "Applied"
    )
    took = f" in {entry.seconds:.2f} s" if entry.seconds is not None else ""
    return f"{verb} {entry.started()} by {entry.db_user} ({entry.who}, {entry.tool}){took}"


def edited_applied_revisions(
    engine: sa.Engine, table_name: str, script: ScriptDirectory, heads: tuple[str, ...]
) -> list[EditedRevision]:
    """The applied revisions whose file changed since (empty: no journal yet)."""
    with closed_after(engine) as connection:
        return edited_revisions(connection, journal_table(table_name), script, heads)
