"""The journal of a run, as ``run_migrations()`` opens it: created on first use, the
checksums of the applied revisions compared, every revision watched."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from flask_entitydb.migrations._journal.checks import edited_revisions, version_heads
from flask_entitydb.migrations._journal.journal import Journal
from flask_entitydb.migrations._journal.table import run_identity
from flask_entitydb.migrations._journal.watch import watching

log = logging.getLogger("flask_entitydb")


def has_journal(url: sa.URL) -> bool:
    """Whether a database keeps a journal: all but an in-memory SQLite database (only its
    own process sees it)."""
    return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


@contextlib.contextmanager
def journaled(
    engine: sa.Engine,
    table_name: str,
    *,
    galera: bool,
    script: ScriptDirectory,
    connection: sa.Connection,
    migration: MigrationContext,
) -> Iterator[Journal | None]:
    """The journal of the run on ``connection`` while the block runs (``None`` for an
    in-memory SQLite database); warns of applied revisions edited since."""
    if not has_journal(engine.url):
        yield None
        return
    journal = Journal(
        engine, table_name, run_identity(engine.url), galera=galera, migrating=connection
    )
    try:
        journal.open(connection)
        heads = version_heads(
            connection,
            str(migration.opts.get("version_table", "alembic_version")),
            migration.opts.get("version_table_schema"),
        )
        for edited in edited_revisions(connection, journal.table, script, heads):
            log.warning("%s", edited.describe())
        connection.commit()
        with watching(journal, script, connection):
            yield journal
    finally:
        journal.close()
