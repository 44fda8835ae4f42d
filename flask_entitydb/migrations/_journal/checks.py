"""Applied revisions whose file changed since they were applied (Flyway's ``validate``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from flask_entitydb.migrations._journal.entries import last_applied, table_exists
from flask_entitydb.migrations._journal.table import checksum


@dataclass(frozen=True)
class EditedRevision:
    """An applied revision whose file is not the one that was applied."""

    revision: str
    path: str
    recorded: str
    found: str

    def describe(self) -> str:
        """One line naming the file."""
        return (
            f"Revision '{self.revision}' ({os.path.basename(self.path)}) was edited after it"
            " was applied: its checksum differs from the journal's; review the change (it will"
            " not run again), then accept it with 'flask db repair --checksums'."
        )


def applied_revisions(script: ScriptDirectory, heads: tuple[str, ...]) -> list[str]:
    """The revisions a database at ``heads`` has applied (the heads and their ancestors)."""
    if not heads:
        return []
    try:
        return [s.revision for s in script.revision_map.iterate_revisions(heads, "base") if s]
    except (CommandError, RevisionError):
        return []  # a revision no file defines: the command itself reports it


def edited_revisions(
    connection: sa.Connection,
    table: sa.Table,
    script: ScriptDirectory,
    heads: tuple[str, ...],
) -> list[EditedRevision]:
    """The applied revisions whose file's checksum differs from their journal row (a
    revision the journal never saw applied, such as one applied before the journal
    existed, is not compared)."""
    if not table_exists(connection, table.name):
        return []
    recorded = last_applied(connection, table)
    edited = []
    for revision in applied_revisions(script, heads):
        entry = recorded.get(revision)
        found = script.get_revision(revision)
        if entry is None or not entry.checksum or found is None:
            continue
        now = checksum(found.path)
        if now != entry.checksum and entry.checksum not in squashed_checksums(script, revision):
            edited.append(EditedRevision(revision, found.path, entry.checksum, now))
    return edited


SQUASHED_FOLDER = "squashed"
"""The folder of ``flask db squash``'s revisions (``_squash.files.FOLDER``)."""


def squashed_checksums(script: ScriptDirectory, revision: str) -> set[str]:
    """The checksums of the squashed revisions standing for ``revision``: a new database
    started from one of them journals that file under ``revision``'s id."""
    folder = os.path.join(script.dir, SQUASHED_FOLDER)
    if not os.path.isdir(folder):
        return set()
    return {
        checksum(os.path.join(folder, name))
        for name in os.listdir(folder)
        if name.startswith(f"{revision}_") and name.endswith(".py")
    }


def version_heads(connection: sa.Connection, name: str, schema: str | None) -> tuple[str, ...]:
    """The revisions of the version table ``name`` (empty when it does not exist yet)."""
    if not sa.inspect(connection).has_table(name, schema=schema):
        return ()
    table = sa.table(name, sa.column("version_num"), schema=schema)
    rows = connection.execute(sa.select(table.c.version_num)).scalars().all()
    connection.commit()
    return tuple(str(row) for row in rows)
