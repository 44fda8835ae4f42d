"""Starting a new database from a squashed revision: what ``flask db upgrade`` does
before Alembic's own upgrade. On a database with no revision yet, when a squashed
revision stands for a revision on the way to the target, it is applied alone (through
``env.py``, with the lock, reported like any revision) and the version table says the
revision it stands for; Alembic's upgrade then goes on from there. Any other database
upgrades through the revisions themselves."""

from __future__ import annotations

import logging
import os

from alembic import command
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from flask import current_app

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._config import EntityDBConfig
from flask_entitydb.migrations._context import read_heads
from flask_entitydb.migrations._run import run_of
from flask_entitydb.migrations._squash.files import (
    SquashedFile,
    backend_family,
    folder_of,
    locations,
    squashed_files,
)
from flask_entitydb.migrations._squash.line import fingerprint
from flask_entitydb.migrations.binds import bind_database, config_bind
from flask_entitydb.state import get_state

log = logging.getLogger("flask_entitydb")


def _ancestors(script: ScriptDirectory, revision: str) -> set[str] | None:
    """The revisions an upgrade to ``revision`` applies to an empty database (``None``:
    an unknown target, which no squashed revision serves)."""
    try:
        return {s.revision for s in script.iterate_revisions(revision, "base")}
    except (CommandError, RevisionError):
        return None


def _backend(config: EntityDBConfig) -> str:
    """The backend family of the database ``config`` migrates."""
    run = run_of(config)
    app = run.app if run is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    url = bind_database(get_state(app), config_bind(config)).url
    return backend_family(str(url.get_backend_name()))


def usable(config: EntityDBConfig, revision: str) -> SquashedFile | None:
    """The squashed revision a new database upgrading to ``revision`` starts from: the
    one standing for the most revisions among those the upgrade applies.

    :raises MigrationError: the revisions it replaces changed since it was written.
    """
    if not os.path.isdir(folder_of(config)):
        return None  # the common case: a stat, no database round trip
    files = squashed_files(config)
    if not files or revision.startswith(("+", "-")) or ":" in revision:
        return None
    script = ScriptDirectory.from_config(config)
    if read_heads(config, script):
        return None  # a database partway or past: the revisions themselves (unread)
    applied = _ancestors(script, revision)
    candidates = [f for f in files if applied is not None and f.revision in applied]
    if not candidates:
        return None
    backend = _backend(config)
    if not any(f.backend == backend for f in candidates):
        names = ", ".join(f"'{os.path.basename(f.path)}' ({f.backend})" for f in candidates)
        log.warning(
            "Upgrading through the revisions: the squashed revisions %s were written on"
            " another backend than this database's (%s).",
            names,
            backend,
        )
        return None
    chosen = max((f for f in candidates if f.backend == backend), key=lambda f: len(f.replaces))
    if _changed(script, chosen):
        raise MigrationError(
            f"The revisions the squashed revision '{chosen.path}' replaces changed since it"
            f" was written; squash again ('flask db squash --to {chosen.revision}'), or"
            " delete the file to upgrade through the revisions themselves."
        )
    return chosen


def _changed(script: ScriptDirectory, squashed: SquashedFile) -> bool:
    """Whether a revision ``squashed`` replaces is gone, or its file changed."""
    try:
        scripts = [script.get_revision(rev) for rev in squashed.replaces]
    except (CommandError, RevisionError):
        return True
    found = [s for s in scripts if s is not None]
    return len(found) != len(scripts) or fingerprint(found) != squashed.fingerprint


def start_new_database(config: EntityDBConfig, revision: str, tag: str | None) -> None:
    """Apply the squashed revision a new database upgrading to ``revision`` starts from,
    if there is one."""
    chosen = usable(config, revision)
    if chosen is None:
        return
    try:
        with locations(config, folder_of(config)):
            command.upgrade(config, chosen.revision, tag=tag)
    except (CommandError, RevisionError):
        # another process upgraded the database between the check and the lock: the
        # squashed revisions do not know its revision; go on through the revisions
        if not read_heads(config, ScriptDirectory.from_config(config)):
            raise
