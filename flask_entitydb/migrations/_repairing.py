"""``flask db repair``: after a person has checked the database, say what became of a
revision the journal shows as interrupted or failed (Flyway's ``repair``), or accept the
edited files of applied revisions (``--checksums``). Holds the migration lock like
``upgrade``."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._config import make_config
from flask_entitydb.migrations._connections import closed_after
from flask_entitydb.migrations._context import (
    PathArg,
    current_flask_app,
    running,
    script_directory,
    version_table,
)
from flask_entitydb.migrations._journal.checks import edited_revisions, version_heads
from flask_entitydb.migrations._journal.entries import Entry, last_entries
from flask_entitydb.migrations._journal.table import (
    APPLIED,
    FAILED,
    INTERRUPTED,
    ROLLED_BACK,
    RUNNING,
    checksum,
    create_if_missing,
    journal_table,
    run_identity,
    utcnow,
)
from flask_entitydb.migrations._locks.runlock import run_lock
from flask_entitydb.migrations._run import DEFAULT_LOCK_TIMEOUT
from flask_entitydb.migrations.binds import bind_engine, selected_bind
from flask_entitydb.migrations.results import RepairResult

_UNFINISHED = (RUNNING, INTERRUPTED, FAILED)


def repair(
    revision: str | None = None,
    *,
    applied: bool = False,
    checksums: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    directory: PathArg = None,
    app: Flask | None = None,
) -> RepairResult:
    """Mark an interrupted or failed revision as rolled back (the next upgrade runs it
    again) or, with ``applied``, as applied (stamping the version table too); with
    ``checksums``, accept the edited files of applied revisions.

    Check the database first: the journal records what ran, not what the database holds.
    The version table is the one ``env.py`` gives ``run_migrations()``, as for
    ``upgrade``.

    :param revision: the revision to repair; ``None``: the one revision left unfinished.
    :raises MigrationError: nothing to repair, several candidates, or the revision is not
        unfinished.
    """
    app = current_flask_app(app)
    with running(app) as state:
        config = make_config(app, directory)
        script = script_directory(config)
        table = journal_table(state.settings.migration_journal_table)
        versions = version_table(config, script)  # env.py's, as upgrade uses it
        engine = bind_engine(state, selected_bind())
        with (
            closed_after(engine) as connection,
            run_lock(
                connection,
                timeout=lock_timeout,
                mode=state.settings.migration_lock,
                lease_seconds=state.settings.migration_lease_seconds,
            ),
        ):
            create_if_missing(connection, table)
            if checksums:
                return _accept_checksums(connection, table, script, versions)
            entry = _unfinished(connection, table, revision)
            found = script.get_revision(entry.revision)
            if found is None:
                raise MigrationError(
                    f"No file in '{script.versions}' defines revision '{entry.revision}'."
                )
            new_state = APPLIED if applied else ROLLED_BACK
            identity = run_identity(engine.url)
            connection.execute(
                table.insert().values(
                    revision=entry.revision,
                    seq=entry.seq + 1,
                    direction="repair",
                    state=new_state,
                    run_id=identity.run_id,
                    host=identity.host,
                    pid=identity.pid,
                    db_user=identity.db_user,
                    tool=identity.tool,
                    started_at=utcnow(),
                    finished_at=utcnow(),
                    committed_part=False,
                    error=f"repaired: was {entry.state}",
                    checksum=checksum(found.path),
                )
            )
            if applied:
                name, schema = versions
                options = {"version_table": name, "version_table_schema": schema}
                MigrationContext.configure(connection, opts=options).stamp(script, entry.revision)
            connection.commit()
            return RepairResult((entry.revision,), new_state)


def _unfinished(connection: sa.Connection, table: sa.Table, revision: str | None) -> Entry:
    latest = last_entries(connection, table)
    connection.commit()
    if revision is not None:
        entry = latest.get(revision)
        if entry is None or entry.state not in _UNFINISHED:
            said = "has no entry" if entry is None else f"says '{entry.state}'"
            raise MigrationError(
                f"Nothing to repair for revision '{revision}': the journal {said}; only an"
                " interrupted or failed revision is repaired ('flask db history -v')."
            )
        return entry
    candidates = sorted(rev for rev, entry in latest.items() if entry.state in _UNFINISHED)
    if not candidates:
        raise MigrationError(
            "Nothing to repair: no revision is interrupted or failed in the journal."
        )
    if len(candidates) > 1:
        names = ", ".join(f"'{rev}'" for rev in candidates)
        raise MigrationError(
            f"Several revisions are unfinished ({names}); name the one to repair:"
            " 'flask db repair REVISION'."
        )
    return latest[candidates[0]]


def _accept_checksums(
    connection: sa.Connection,
    table: sa.Table,
    script: ScriptDirectory,
    versions: tuple[str, str | None],
) -> RepairResult:
    heads = version_heads(connection, *versions)
    edited = edited_revisions(connection, table, script, heads)
    for item in edited:
        connection.execute(
            table.update()
            .where(table.c.revision == item.revision, table.c.checksum == item.recorded)
            .values(checksum=item.found)
        )
    connection.commit()
    return RepairResult(tuple(item.revision for item in edited), "checksums")


__all__ = ["repair"]
