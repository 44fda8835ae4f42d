"""Writing the migrations folder and its revisions: ``init`` (and ``replace_env_file``,
``list_templates``), ``revision``, ``migrate``, ``edit`` and ``merge``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, cast

from alembic import command
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from alembic.util import CommandError
from flask import Flask

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._autogenerate import changes as _changes
from flask_entitydb.migrations._autogenerate import drops as _drops
from flask_entitydb.migrations._autogenerate.cycles import cycles_sorted_later
from flask_entitydb.migrations._autogenerate.portable import drop_indexes_with_tables
from flask_entitydb.migrations._config import make_config, migrations_directory
from flask_entitydb.migrations._context import (
    PathArg,
    XArg,
    current_flask_app,
    quiet,
    require_entities,
    require_head,
    revisions_reused,
    running,
    x_arguments,
)
from flask_entitydb.migrations._scaffold import envfile
from flask_entitydb.migrations._scaffold.choice import available_templates, template_folder
from flask_entitydb.migrations.binds import mark_ini, selected_bind
from flask_entitydb.migrations.results import EnvReplacement, NewRevision


def init(
    directory: PathArg = None,
    multidb: bool = False,
    template: str | os.PathLike[str] | None = None,
    package: bool = False,
    *,
    replace_env: bool = False,
    app: Flask | None = None,
) -> str:
    """Create the migrations folder: ``alembic.ini``, ``env.py``, ``script.py.mako``,
    ``README`` and ``versions/``.

    The arguments are Flask-Migrate's ``init(directory, multidb, template, package)``.

    :param directory: where (default: the app's configured folder, ``migrations`` in the
        app's package).
    :param multidb: refused: each bind has a folder of its own (``flask db init --bind
        KEY``, or :func:`~flask_entitydb.migrations.binds.using_bind`).
    :param package: also write ``__init__.py`` files, making the folders packages.
    :param replace_env: do not create anything, only replace the ``env.py`` of an existing
        folder with flask-entitydb's (switching from Flask-Migrate or a hand-made
        ``env.py``; the revisions are kept), as :func:`replace_env_file` does.
    :param template: a bundled template's name (``entitydb``, the default;
        :func:`list_templates`) or the path of a template folder of your own.
    :returns: the folder's absolute path.
    """
    if multidb:
        raise MigrationError(
            "init(multidb=True) writes Flask-Migrate's multi-database env.py; flask-entitydb"
            " gives each bind a migrations folder of its own: run 'flask db init --bind KEY'"
            " (or init() inside 'with using_bind(KEY):') for each bind."
        )
    app = current_flask_app(app)
    path = migrations_directory(app, directory)
    if replace_env:
        replace_env_file(directory, app=app)
        return path
    if os.path.isdir(path) and os.listdir(path):
        raise MigrationError(
            f"The migrations folder '{path}' already exists and is not empty; use it as it"
            " is, or choose another folder with 'flask db -d <folder> init'."
        )
    with running(app):
        config = make_config(app, directory, must_exist=False)
        with quiet():
            command.init(config, path, template=template_folder(template), package=package)
    _set_prepend_sys_path(app, path)
    mark_ini(path, selected_bind())
    return path


def list_templates() -> list[tuple[str, str]]:
    """``(name, description)`` of the templates ``init`` can write
    (``flask db list-templates``)."""
    return available_templates()


def replace_env_file(directory: PathArg = None, *, app: Flask | None = None) -> EnvReplacement:
    """Replace the ``env.py`` of an existing migrations folder with flask-entitydb's
    (``flask db init --replace-env``): the old file is kept as ``env.py.bak``, what it
    configured beyond Flask-Migrate's stock file is listed with its equivalent, and a
    kept ``alembic.ini`` gets the ``script_location`` Alembic needs to run directly.

    :raises MigrationError: there is no folder.
    """
    app = current_flask_app(app)
    return envfile.replace_env(migrations_directory(app, directory), _import_root(app))


def _import_root(app: Flask) -> str | None:
    """The ``sys.path`` entry the app's top-level package (or module) was imported from."""
    module = sys.modules.get(app.import_name.split(".")[0])
    if module is None:
        return None
    paths = list(getattr(module, "__path__", []))
    if paths:  # a package: its folder's parent
        return os.path.dirname(os.path.abspath(str(paths[0])))
    file = getattr(module, "__file__", None)
    return os.path.dirname(os.path.abspath(str(file))) if file else None


def _set_prepend_sys_path(app: Flask, path: str) -> None:
    """Make the new ``alembic.ini`` put the app's import root on ``sys.path`` relative to
    the file itself (``%(here)s``), so Alembic run directly finds the app from any working
    directory."""
    root = _import_root(app)
    ini = os.path.join(path, "alembic.ini")
    if root is None or not os.path.isfile(ini):
        return
    relative = os.path.relpath(root, path).replace(os.sep, "/")
    value = "%(here)s" if relative == "." else f"%(here)s/{relative}"
    with open(ini, encoding="utf-8") as file:
        text = file.read()
    text = text.replace("\nprepend_sys_path = .\n", f"\nprepend_sys_path = {value}\n", 1)
    with open(ini, "w", encoding="utf-8") as file:
        file.write(text)


def revision(
    directory: PathArg = None,
    message: str | None = None,
    autogenerate: bool = False,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | Sequence[str] | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    *,
    allow_empty: bool = False,
    depends_on: str | Sequence[str] | None = None,
    allow_drop: _drops.AllowDrop = False,
    x_args: Sequence[str] = (),
    app: Flask | None = None,
) -> NewRevision | None:
    """Write a new revision file (``flask db revision``). The positional arguments are
    Flask-Migrate's ``revision(directory, message, autogenerate, sql, head, splice,
    branch_label, version_path, rev_id)``.

    With ``autogenerate``, the revision holds the differences between the entities and
    the database; the database must be at head and at least one entity must exist.

    :param allow_empty: with ``autogenerate``, write a revision even when nothing changed
        (without ``autogenerate`` the revision is always written, with empty functions).
    :param allow_drop: with ``autogenerate``, whether a revision that drops tables may be
        written: ``True``, ``False`` (refuse), or a function given the quoted table names
        that answers. It is refused anyway while an ``*_entity.py`` file of the project
        was not discovered.
    :returns: the new revision, or ``None`` when autogenerate found no change and
        ``allow_empty`` is false.
    :raises MigrationError: no migrations folder, database behind head, no entities, ...
    """
    app = current_flask_app(app)
    with running(app) as state:
        config = make_config(app, directory, x_args=x_args, writes_revisions=True)
        if sql:
            config.set_main_option("revision_environment", "true")
        found: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        refused: list[str] = []
        if autogenerate:
            require_entities(state)

        def directives(context: MigrationContext, rev: Any, scripts: list[Any]) -> None:
            if not autogenerate or not scripts:
                return
            script: ops.MigrationScript = scripts[0]
            drop_indexes_with_tables(script)  # before describing: as the file will be
            operations = [op for upgrade in script.upgrade_ops_list for op in upgrade.ops]
            reason = _drops.guard_drops(app, state, operations, allow_drop)
            if reason is not None:
                refused.append(reason)
                scripts[:] = []
                return
            described = _changes.describe_all(operations, context.dialect)
            found.append(described)
            if not operations and not allow_empty:
                scripts[:] = []
            elif script.message is None:
                script.message = _changes.summary(described[0])

        # the revisions make_config loaded (Alembic adds the new one to them)
        with quiet(), cycles_sorted_later(), revisions_reused(config):
            try:
                result = command.revision(
                    config,
                    message=message,
                    autogenerate=autogenerate,
                    sql=sql,
                    head=head,
                    splice=splice,
                    branch_label=_labels(branch_label),
                    version_path=version_path,
                    rev_id=rev_id,
                    depends_on=cast("str | None", _labels(depends_on)),
                    process_revision_directives=directives,
                )
            except CommandError:
                if autogenerate:
                    # Alembic's autogenerate refuses a database behind head ("Target
                    # database is not up to date") or at an unknown revision before it
                    # writes anything: say which, and what to do (checked here, on
                    # failure, rather than in a second run of env.py on every migrate)
                    require_head(config)
                raise
    if refused:
        raise MigrationError(refused[0])
    script = _single(result)
    if script is None and autogenerate:
        return None
    return _new_revision(script, found[0] if found else ((), ()))


def migrate(
    directory: PathArg = None,
    message: str | None = None,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | Sequence[str] | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    x_arg: XArg = None,
    *,
    allow_empty: bool = False,
    allow_drop: _drops.AllowDrop = False,
    x_args: Sequence[str] = (),
    app: Flask | None = None,
) -> NewRevision | None:
    """Autogenerate a revision from the entities (``flask db migrate``). The positional
    arguments are Flask-Migrate's ``migrate(directory, message, sql, head, splice,
    branch_label, version_path, rev_id, x_arg)``; ``sql`` is refused, as Alembic refuses
    ``--sql`` with ``--autogenerate``.

    Without ``message`` the revision is named after the changes found. A revision that
    drops a table is only written with ``allow_drop`` (see :func:`revision`).

    :returns: the new revision, or ``None`` when there was nothing to migrate.
    :raises MigrationError: the database is behind head (nothing is written), no entities
        were found, no migrations folder, database unreachable.
    """
    if sql:
        raise MigrationError(
            "migrate(sql=True): an autogenerated revision compares the entities with the"
            " database, so it cannot be written as SQL; write the revision, then use"
            " upgrade_sql()."
        )
    return revision(
        message=message,
        autogenerate=True,
        allow_empty=allow_empty,
        head=head,
        splice=splice,
        branch_label=branch_label,
        version_path=version_path,
        rev_id=rev_id,
        allow_drop=allow_drop,
        x_args=x_arguments(x_arg, x_args),
        directory=directory,
        app=app,
    )


def edit(directory: PathArg = None, revision: str = "current", *, app: Flask | None = None) -> None:
    """Open a revision file in ``$EDITOR`` (``flask db edit``); Flask-Migrate's
    ``edit(directory, revision)``, by default the revision the database is at."""
    app = current_flask_app(app)
    with running(app):
        command.edit(make_config(app, directory), revision)


def merge(
    directory: PathArg = None,
    revisions: str | Sequence[str] = "heads",
    message: str | None = None,
    branch_label: str | Sequence[str] | None = None,
    rev_id: str | None = None,
    *,
    app: Flask | None = None,
) -> NewRevision:
    """Write a revision that merges two or more revisions, by default all heads
    (``flask db merge``); Flask-Migrate's ``merge(directory, revisions, message,
    branch_label, rev_id)``."""
    app = current_flask_app(app)
    with running(app):
        config = make_config(app, directory, runs_env=False, writes_revisions=True)
        with quiet():
            script = command.merge(
                config,
                _labels(revisions) or "heads",
                message=message,
                branch_label=_labels(branch_label),
                rev_id=rev_id,
            )
    return _new_revision(script)


def _labels(value: str | Sequence[str] | None) -> str | list[str] | None:
    """Labels or revisions as Alembic's commands take them (a string or a list)."""
    if value is None or isinstance(value, str):
        return value
    return list(value)


def _new_revision(
    script: Script | None, found: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
) -> NewRevision:
    """The :class:`NewRevision` of a written file; ``found`` is its changes and drops."""
    if script is None:  # pragma: no cover - Alembic returns None only for broken templates
        raise MigrationError("Alembic did not write a revision file; check 'script.py.mako'.")
    return NewRevision(
        revision=script.revision,
        message=script.doc,
        path=os.path.abspath(script.path),
        changes=found[0],
        drops=found[1],
    )


def _single(result: Script | list[Script | None] | None) -> Script | None:
    """The one script ``command.revision`` wrote (it returns a list for several heads)."""
    if isinstance(result, list):
        return result[0] if result else None
    return result


__all__ = [
    "edit",
    "init",
    "list_templates",
    "merge",
    "migrate",
    "replace_env_file",
    "revision",
]
