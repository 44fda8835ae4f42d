"""Migrations of an app with several databases (binds).

Each bind has a migrations folder of its own, with its own revisions and its own
``alembic_version`` table in its own database: the default database's folder is the
migrations folder itself (an app with one database sees no change), the folder of bind
``analytics`` is ``<migrations folder>/binds/analytics`` (its ``alembic.ini`` says
``entitydb_bind = analytics``, so Alembic run directly on it migrates that database).

The commands work on the bind selected with :func:`using_bind` (the default database when
none is); ``flask db`` runs them for every bind, or for the one named by ``--bind``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar

import sqlalchemy as sa
from alembic.config import Config

from flask_entitydb._engine.routes import table_bind_key, tables_of
from flask_entitydb._settings.model import DatabaseSettings
from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._run import run_of
from flask_entitydb.state import EntityDBState

INI_OPTION = "entitydb_bind"
"""The ``[alembic]`` option of a bind's ``alembic.ini`` naming its bind."""

DEFAULT_NAME = "default"
"""What ``--bind`` calls the default database."""

_selected: ContextVar[str | None] = ContextVar("flask_entitydb_bind", default=None)


@contextlib.contextmanager
def using_bind(key: str | None) -> Iterator[None]:
    """Run the migration functions of :mod:`flask_entitydb.migrations` inside the block
    for bind ``key`` (``None``: the default database)::

        with using_bind("analytics"):
            migrations.upgrade()
    """
    token = _selected.set(key)
    try:
        yield
    finally:
        _selected.reset(token)


def selected_bind() -> str | None:
    """The bind the commands run for now (``None``: the default database)."""
    return _selected.get()


def bind_name(key: str | None) -> str:
    """The bind's name in messages: its key, or ``default``."""
    return DEFAULT_NAME if key is None else key


def selected_keys(state: EntityDBState, wanted: str | None) -> tuple[str | None, ...]:
    """The binds a command runs for: every bind, or the one ``--bind`` names.

    :raises MigrationError: no such bind.
    """
    keys = state.settings.bind_keys
    if wanted is None:
        return keys
    if wanted in state.settings.binds:
        return (wanted,)
    if wanted == DEFAULT_NAME:
        return (None,)
    names = ", ".join(f"'{bind_name(key)}'" for key in keys)
    raise MigrationError(
        f"There is no bind '{wanted}'; the app's binds are {names} (ENTITYDB_BINDS)."
    )


def config_bind(config: Config) -> str | None:
    """The bind an Alembic config is for: the API's run object's, else ``alembic.ini``'s."""
    run = run_of(config)
    if run is not None:
        return run.bind
    return config.get_main_option(INI_OPTION) or None


def bind_database(state: EntityDBState, key: str | None) -> DatabaseSettings:
    """The primary database of bind ``key``.

    :raises MigrationError: the app has no such bind.
    """
    try:
        return state.settings.bind(key).primary
    except KeyError:
        raise MigrationError(
            f"The migrations folder is for the bind '{key}' ('{INI_OPTION}' in its"
            f" alembic.ini), which the app does not configure; add it to ENTITYDB_BINDS."
        ) from None


def bind_engine(state: EntityDBState, key: str | None) -> sa.Engine:
    """The primary engine of bind ``key``: migrations never use a replica."""
    if state.routes is None:
        return state.db.engine
    bind_database(state, key)  # a clear error for an unknown bind
    return state.routes.engines[key]


def bind_metadata(metadata: sa.MetaData, key: str | None) -> sa.MetaData:
    """The tables of bind ``key`` as a metadata of their own (the target of autogenerate);
    ``metadata`` itself when no table names a bind."""
    if all(table_bind_key(table) is None for table in metadata.tables.values()):
        return metadata
    own = sa.MetaData(
        schema=metadata.schema,
        naming_convention=metadata.naming_convention,
        info=dict(metadata.info),
    )
    for table in tables_of(metadata, key):
        table.to_metadata(own)
    return own


def mark_ini(path: str, key: str | None) -> None:
    """Write ``entitydb_bind = <key>`` into the ``[alembic]`` section of the new
    ``alembic.ini`` in ``path``."""
    ini = os.path.join(path, "alembic.ini")
    if key is None or not os.path.isfile(ini):
        return
    with open(ini, encoding="utf-8") as file:
        text = file.read()
    line = (
        f"# the bind (ENTITYDB_BINDS key) whose database these revisions migrate\n"
        f"{INI_OPTION} = {key}\n"
    )
    text = text.replace("[alembic]\n", f"[alembic]\n{line}", 1)
    with open(ini, "w", encoding="utf-8") as file:
        file.write(text)
