"""``flask db squash``, the API function: choose the revisions, build the history on a
scratch database, write the squashed revision from it, build it on a second scratch
database, compare the two, and write the file only when they are equal."""

from __future__ import annotations

import os
import tempfile

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Flask

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._config import make_config
from flask_entitydb.migrations._context import PathArg, current_flask_app, running
from flask_entitydb.migrations._failures import one_line
from flask_entitydb.migrations._squash import line
from flask_entitydb.migrations._squash.files import (
    backend_family,
    file_name,
    folder_of,
    squashed_files,
    write,
)
from flask_entitydb.migrations._squash.render import reflected, source
from flask_entitydb.migrations._squash.result import SquashResult
from flask_entitydb.migrations._squash.rows import seed
from flask_entitydb.migrations._squash.scratch import scratch_engine, upgrade_scratch
from flask_entitydb.migrations._squash.snapshot import differences, snapshot
from flask_entitydb.migrations.binds import bind_database, bind_name, selected_bind


def squash(
    to: str | None = None,
    *,
    message: str | None = None,
    dry_run: bool = False,
    directory: PathArg = None,
    app: Flask | None = None,
) -> SquashResult:
    """Squash the history up to ``to`` into one revision for new databases
    (``flask db squash``); the bind selected with
    :func:`~flask_entitydb.migrations.binds.using_bind`.

    The squashed revision has ``to``'s id and goes into ``<migrations folder>/squashed/``;
    the revisions it replaces stay. ``upgrade`` runs it alone on a database with no
    revision yet, then goes on from ``to``; a database already at one of the replaced
    revisions upgrades through them, and one at or past ``to`` does not notice.

    Before anything is written, the history up to ``to`` and the squashed revision are
    each run through ``env.py`` on a scratch database of the app's backend (next to the
    app's database on its server: the user needs the privilege to create databases), and
    what reflection sees of the two (tables, columns, keys, indexes, constraints,
    comments, views, sequences, and the rows the revisions inserted) is compared.

    :param to: the last revision to replace (default: the head; it must be the only one).
    :param message: the squashed revision's message.
    :param dry_run: do everything but write the file.
    :returns: a :class:`SquashResult`; ``result.ok`` is false when the two schemas differ
        (``result.differences`` says how), and then no file is written.
    :raises MigrationError: unknown revision, several heads, history up to ``to`` not a
        single line (a merge, a branch, ``depends_on``), already squashed there, a
        revision failing on the scratch database, no migrations folder.
    """
    app = current_flask_app(app)
    with running(app) as state:
        key = selected_bind()
        url = bind_database(state, key).url
        config = make_config(app, directory)
        script = ScriptDirectory.from_config(config)
        top = line.target(script, to)
        scripts = line.replaced(script, top)
        for existing in squashed_files(config):
            if existing.revision == top.revision:
                raise MigrationError(
                    f"The history up to '{top.revision}' is already squashed in"
                    f" '{existing.path}'; delete that file to squash it again."
                )
        replaces = tuple(s.revision for s in scripts)
        message = message or f"Squash of {len(replaces)} revision(s) up to {top.revision}"
        name = file_name(top.revision, message)
        with scratch_engine(url) as engine:
            _history(app, directory, engine, top.revision)
            metadata = reflected(engine)
            rows = seed(engine, metadata)
            before = snapshot(engine)
            dialect = engine.dialect
        text = source(
            metadata,
            dialect,
            rows,
            revision=top.revision,
            replaces=replaces,
            fingerprint=line.fingerprint(scripts),
            message=message,
            backend=backend_family(url.get_backend_name()),
        )
        found = _prove(app, directory, url, name, text, top.revision, before)
        path = os.path.join(folder_of(config), name)
        written = not found and not dry_run
        if written:
            path = write(config, name, text)
        return SquashResult(
            revision=top.revision,
            replaces=replaces,
            path=os.path.abspath(path),
            source=text,
            written=written,
            differences=tuple(found),
            dialect=dialect.name,
            bind=bind_name(key),
        )


def _history(app: Flask, directory: PathArg, engine: sa.Engine, revision: str) -> None:
    failure = _failure(app, directory, engine, revision)
    if failure is not None:
        raise MigrationError(
            f"The history up to '{revision}' failed on a scratch database: {failure}"
        )


def _failure(
    app: Flask, directory: PathArg, engine: sa.Engine, revision: str, only: str | None = None
) -> str | None:
    """Upgrade a scratch database; the error in one line, if any."""
    try:
        upgrade_scratch(app, directory, engine, revision, only=only)
    except MigrationError as error:
        return one_line(error)
    return None


def _prove(
    app: Flask,
    directory: PathArg,
    url: sa.URL,
    name: str,
    text: str,
    revision: str,
    before: dict[str, object],
) -> list[str]:
    """The differences between ``before`` and the schema the squashed revision makes."""
    with tempfile.TemporaryDirectory(prefix="entitydb-squash-") as folder:
        with open(os.path.join(folder, name), "w", encoding="utf-8") as file:
            file.write(text)
        with scratch_engine(url) as engine:
            failure = _failure(app, directory, engine, revision, only=folder)
            if failure is not None:
                return [f"the squashed revision failed on a scratch database: {failure}"]
            after = snapshot(engine)
    return differences(before, after)
