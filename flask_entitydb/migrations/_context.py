"""What every command of the API starts from: the app, its state and Alembic config, the
script directory and the revisions the database is at.

:mod:`._revisions`, :mod:`._running`, :mod:`._inspect` and ``flask db lint`` use these.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from flask import Flask, current_app

from flask_entitydb._compat.alembic import script_reused
from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._autogenerate import drops
from flask_entitydb.migrations._config import EntityDBConfig
from flask_entitydb.migrations._failures import translated
from flask_entitydb.migrations._scaffold.folder import checked_script
from flask_entitydb.migrations.binds import bind_database, bind_metadata, selected_bind
from flask_entitydb.state import EntityDBState, get_state

_T = TypeVar("_T")

PathArg = str | os.PathLike[str] | None
"""A migrations folder (``None``: the app's configured one)."""

XArg = str | Sequence[str] | None
"""Flask-Migrate's ``x_arg``: one ``-x`` value or several."""


def x_arguments(x_arg: XArg, x_args: Sequence[str]) -> list[str]:
    """The ``-x`` values of a call: Flask-Migrate's ``x_arg`` and flask-entitydb's
    ``x_args``, together."""
    given = [x_arg] if isinstance(x_arg, str) else list(x_arg or ())
    return [*given, *x_args]


def printed_sql(sql: str) -> list[Any]:
    """What ``upgrade(sql=True)`` (and ``downgrade``, ``stamp``) does, as in
    Flask-Migrate: print the SQL; nothing was applied. ``upgrade_sql()`` returns it."""
    sys.stdout.write(sql)
    return []


def current_flask_app(app: Flask | None) -> Flask:
    """``app``, else the current app.

    :raises MigrationError: no app given and no app context.
    """
    if app is not None:
        return app
    try:
        return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
    except RuntimeError:
        raise MigrationError(
            "No Flask app: call this inside 'with app.app_context():' or pass 'app=app'."
        ) from None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep Alembic's console chatter (post-write hook status lines) out of the caller's
    stdout: the API returns values instead."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@contextlib.contextmanager
def running(app: Flask) -> Iterator[EntityDBState]:
    """Translate expected failures, and push an app context when the caller has none for
    this app."""
    state = get_state(app)
    database = bind_database(state, selected_bind())
    with contextlib.ExitStack() as stack:
        try:
            pushed = current_app._get_current_object() is app  # type: ignore[attr-defined]
        except RuntimeError:
            pushed = False
        if not pushed:
            stack.enter_context(app.app_context())
        stack.enter_context(translated(database.url, database.url_source, database.shown_url))
        yield state


def script_directory(config: EntityDBConfig) -> ScriptDirectory:
    """The revisions of ``config``'s migrations folder: those ``make_config`` loaded."""
    return checked_script(config)


@contextlib.contextmanager
def revisions_reused(config: EntityDBConfig) -> Iterator[None]:
    """While the block runs, Alembic's commands given ``config`` use the revisions
    ``make_config`` loaded instead of loading every revision file again."""
    with script_reused(config, checked_script(config)):
        yield


def _through_env(
    config: EntityDBConfig,
    script: ScriptDirectory,
    read: Callable[[MigrationContext, tuple[str, ...]], _T],
) -> _T | None:
    """``read`` of the migration context ``env.py`` configures (its options, such as the
    version table, apply) and of the revisions the database is at, as Alembic read them
    before it calls ``fn``; ``None`` when ``env.py`` configured none."""
    found: list[_T] = []

    def run(rev: Any, context: MigrationContext) -> list[Any]:
        found.append(read(context, tuple(rev)))
        return []

    with EnvironmentContext(config, script, fn=run, dont_mutate=True):
        script.run_env()
    return found[0] if found else None


def read_heads(config: EntityDBConfig, script: ScriptDirectory) -> tuple[str, ...]:
    """The revisions the database is at, read through ``env.py`` (so its options, such as
    the version table, apply), as they are: unknown revisions included."""
    heads = _through_env(config, script, lambda context, heads: heads)
    return heads or ()


def version_table(config: EntityDBConfig, script: ScriptDirectory) -> tuple[str, str | None]:
    """The version table ``env.py`` gives ``run_migrations()`` (``version_table``,
    ``version_table_schema``): its name and schema."""
    found = _through_env(
        config,
        script,
        lambda context, heads: (context.version_table, context.version_table_schema),
    )
    return found or ("alembic_version", None)


def database_heads(
    config: EntityDBConfig, script: ScriptDirectory | None = None
) -> tuple[str, ...]:
    """The revisions the database is at, read through ``env.py`` (with the revisions of
    ``script`` when given, already loaded).

    :raises MigrationError: the database is at a revision no file defines.
    """
    script = script or script_directory(config)
    heads = read_heads(config, script)
    for rev in heads:
        try:
            script.get_revisions(rev)
        except (CommandError, RevisionError):
            raise MigrationError(
                f"The database is at revision '{rev}', which no file in"
                f" '{script.versions}' defines; use the migrations folder that belongs to"
                " this database (-d), or 'flask db stamp --purge <revision>' if the"
                " database is right."
            ) from None
    return heads


def head_ids(script: ScriptDirectory) -> tuple[str, ...]:
    """The revisions a database at head is at (heads that other heads depend on are
    implied by those, as in Alembic's version table)."""
    return tuple(s.revision for s in script.get_revisions("heads") if s is not None)


def require_head(config: EntityDBConfig) -> tuple[str, ...]:
    """The revisions the database is at, which must be the heads.

    :raises MigrationError: the database is not at head.
    """
    script = checked_script(config)  # the revisions make_config loaded
    current = database_heads(config, script)
    heads = head_ids(script)
    if set(current) != set(heads):
        at = ", ".join(f"'{rev}'" for rev in current) or "no revision (empty)"
        head = ", ".join(f"'{rev}'" for rev in heads)
        raise MigrationError(
            f"The database is at {at}, not at the head {head}; run 'flask db upgrade' first."
        )
    return current


def require_entities(state: EntityDBState) -> None:
    """:raises MigrationError: the selected bind has no entity to compare."""
    if bind_metadata(state.db.metadata, selected_bind()).tables:
        return
    raise drops.no_entities_error(state)
