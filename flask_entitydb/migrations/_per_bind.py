"""The bind decisions of the ``flask db`` commands: which binds a command runs for,
which bind holds a revision, what a bind's database cannot show.

The functions use the current app (or ``app=``). Importing this module is cheap, as
importing :mod:`flask_entitydb.migrations` is: :mod:`~flask_entitydb.migrations.binds`
and ``_config`` import Alembic, so the functions import them when they run
(``flask db --help`` does not load Alembic).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask

from flask_entitydb import migrations
from flask_entitydb._engine.routes import table_bind_key
from flask_entitydb._engine.session import current_app_object
from flask_entitydb._settings.masking import mask_url
from flask_entitydb._settings.model import describe_database
from flask_entitydb.errors import MigrationError
from flask_entitydb.state import get_state


@dataclass(frozen=True)
class BindTarget:
    """A bind a command runs for."""

    key: str | None
    """Its ``ENTITYDB_BINDS`` key (``None``: the default database)."""
    name: str
    """Its name in messages: the key, or ``default``."""
    url: str
    """The URL of its primary database, password masked."""
    database: str = ""
    """Its primary database as the commands that work on it name it: the masked URL and
    where it came from (for the SQLite default: the file, and that
    ``DB_CONNECTION_STRING`` is not set)."""

    @property
    def header(self) -> str:
        """The line naming the bind before its output, when a command runs for several."""
        return f"[{self.name}] {self.url}"


def _target(app: Flask, key: str | None) -> BindTarget:
    from flask_entitydb.migrations.binds import bind_name

    primary = get_state(app).settings.bind(key).primary
    url = mask_url(primary.url)
    return BindTarget(
        key=key,
        name=bind_name(key),
        url=url,
        database=describe_database(
            primary.shown_url or url, primary.url_source, primary.url.database
        ),
    )


def bind_targets(wanted: str | None = None, *, app: Flask | None = None) -> tuple[BindTarget, ...]:
    """The binds a command runs for: every bind of the app, or the one ``wanted`` names
    (``--bind``; ``default`` is the default database).

    :raises MigrationError: the app has no bind ``wanted``.
    """
    from flask_entitydb.migrations.binds import selected_keys

    app = app or current_app_object()
    return tuple(_target(app, key) for key in selected_keys(get_state(app), wanted))


def selected_target(*, app: Flask | None = None) -> BindTarget:
    """The bind the migration functions run for now
    (:func:`~flask_entitydb.migrations.binds.using_bind`)."""
    from flask_entitydb.migrations.binds import selected_bind

    return _target(app or current_app_object(), selected_bind())


def run_per_bind(targets: Sequence[BindTarget], run: Callable[[BindTarget], bool]) -> bool:
    """Call ``run`` for each bind in turn, with that bind selected; ``True`` when every
    call returned ``True`` (a failing bind does not stop the next one)."""
    from flask_entitydb.migrations.binds import using_bind

    ok = True
    for target in targets:
        with using_bind(target.key):
            ok = run(target) and ok
    return ok


def bind_holding(
    revision: str,
    wanted: str | None = None,
    *,
    directory: str | None = None,
    app: Flask | None = None,
    command: str = "flask db",
) -> str | None:
    """The bind whose ``revision`` to work on: ``wanted``, the app's one bind, or the one
    bind whose migrations folder has it.

    :param command: how the messages call the command group.
    :raises MigrationError: no bind has it, or several have it.
    """
    from flask_entitydb.migrations.binds import bind_name, using_bind

    keys = [target.key for target in bind_targets(wanted, app=app)]
    if len(keys) == 1:
        return keys[0]
    holding = []
    for key in keys:
        with using_bind(key):
            try:
                migrations.show(revision=revision, directory=directory, app=app)
            except MigrationError:
                continue
            holding.append(key)
    if len(holding) == 1:
        return holding[0]
    names = ", ".join(f"'{bind_name(key)}'" for key in holding or keys)
    if holding:
        raise MigrationError(
            f"The revision '{revision}' is in the binds {names}; choose one with"
            f" '{command} edit --bind KEY {revision}'."
        )
    raise MigrationError(
        f"No bind ({names}) has the revision '{revision}'; check 'flask db history'."
    )


def edit(
    revision: str = "head",
    wanted: str | None = None,
    *,
    directory: str | None = None,
    app: Flask | None = None,
    command: str = "flask db",
) -> None:
    """:func:`~flask_entitydb.migrations.edit` in the bind :func:`bind_holding` names."""
    from flask_entitydb.migrations.binds import using_bind

    key = bind_holding(revision, wanted, directory=directory, app=app, command=command)
    with using_bind(key):
        migrations.edit(revision=revision, directory=directory, app=app)


def existing_folder(directory: str | None = None, *, app: Flask | None = None) -> str | None:
    """The selected bind's migrations folder when it exists and is not empty."""
    from flask_entitydb.migrations._config import migrations_directory

    path = migrations_directory(app or current_app_object(), directory)
    return path if os.path.isdir(path) and os.listdir(path) else None


def enums_undetected(*, app: Flask | None = None) -> bool:
    """Whether the selected bind's database is SQLite and its entities have Enum
    columns: SQLite stores an Enum as a VARCHAR, so a changed list of values cannot be
    seen there."""
    from flask_entitydb.migrations.binds import bind_engine, bind_metadata, selected_bind

    state = get_state(app or current_app_object())
    key = selected_bind()
    engine = bind_engine(state, key)
    if engine.url.get_backend_name() != "sqlite":
        return False
    dialect = engine.dialect
    return any(
        isinstance(column.type.dialect_impl(dialect), sa.Enum)
        for table in bind_metadata(state.db.metadata, key).tables.values()
        for column in table.columns
    )


def table_bind_name(table: str, *, app: Flask | None = None) -> str:
    """The name of the bind holding ``table`` (a key of the app's metadata; ``default``
    for a table it does not have)."""
    from flask_entitydb.migrations.binds import bind_name

    tables = get_state(app or current_app_object()).db.metadata.tables
    return bind_name(table_bind_key(tables.get(table)))
