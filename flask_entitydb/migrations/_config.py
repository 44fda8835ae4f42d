"""Building Alembic's :class:`~alembic.config.Config` from a Flask app.

The migrations folder is ``state.settings.migrations_dir`` (``migrations`` in the app's
package, or ``ENTITYDB_MIGRATIONS_DIR``) unless a directory is given. Logging is never
configured from ``alembic.ini``: the host application's logging stays as it is.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import re
import shutil
import sysconfig
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic.config import Config
from flask import Flask

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._folders import bind_directory
from flask_entitydb.migrations._run import RUN_KEY, MigrationRun, OnApply, OnStart
from flask_entitydb.migrations._scaffold.folder import check_env, check_ini, check_revision_files
from flask_entitydb.migrations.binds import bind_name, selected_bind
from flask_entitydb.state import get_state

if TYPE_CHECKING:  # the lock code loads only for the runs that take it
    from flask_entitydb.migrations._locks.locking import Notify

TEMPLATES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_scaffold", "templates")
"""Folder of flask-entitydb's Alembic templates."""

TEMPLATE = "entitydb"
"""Name of the template ``flask db init`` writes."""


class EntityDBConfig(Config):
    """Alembic's config, with flask-entitydb's templates."""

    def get_template_directory(self) -> str:
        """The folder of flask-entitydb's templates (``flask db init``)."""
        return TEMPLATES_DIR


def migrations_directory(app: Flask, directory: str | os.PathLike[str] | None = None) -> str:
    """Absolute path of the migrations folder: ``directory`` (relative to the working
    directory) if given, else the app's configured folder; for another bind than the
    default (:func:`~flask_entitydb.migrations.binds.using_bind`), its folder in there."""
    if directory is not None and os.fspath(directory):
        path = os.path.abspath(os.fspath(directory))
    else:
        path = os.path.normpath(os.path.abspath(get_state(app).settings.migrations_dir))
    return bind_directory(path, selected_bind())


def _elsewhere_hint(path: str) -> str:
    """A hint when the folder is missing but a Flask-Migrate style ``./migrations`` exists
    in the working directory (Flask-Migrate's default place)."""
    found = os.path.abspath("migrations")
    if found == path or not os.path.isfile(os.path.join(found, "env.py")):
        return ""
    return (
        f"; there is one at '{found}' (Flask-Migrate's default place): move it into the"
        " app's package, or set 'ENTITYDB_MIGRATIONS_DIR' to its path"
    )


_REVISION_LIKE = re.compile(r"^(heads?|base|current|[+-]?\d+|[0-9a-f]{4,}|\w+@\w+|.*:.*)$")
"""Revision symbols and ids: what a revision given where the folder goes looks like."""


def _given_folder_missing(app: Flask, given: str, path: str) -> str:
    """The error for a ``directory`` argument (``-d``) naming no folder: where the app's
    own folder is, and, when it looks like a revision, that the folder comes first (the
    order of Flask-Migrate's ``upgrade(directory, revision)``)."""
    message = f"There is no migrations folder at '{path}'"
    if not os.path.isabs(given):
        message += " (a relative 'directory' is taken from the working directory)"
    if _REVISION_LIKE.match(given) and os.sep not in given and "/" not in given:
        message += (
            f"; '{given}' looks like a revision: the first argument is the migrations"
            f" folder, as in Flask-Migrate's upgrade(directory, revision), so write"
            f" revision='{given}'"
        )
    configured = migrations_directory(app)
    if os.path.isdir(configured):
        message += (
            f"; the app's migrations folder is '{configured}' (flask-entitydb keeps it in"
            " the app's package), used when no directory is given"
        )
    return message + "."


def _format_hook() -> dict[str, str] | None:
    """Alembic post-write hook options that format new revisions with ruff or black,
    whichever is installed (ruff first), or ``None``."""
    for tool, arguments in (("ruff", "format -q"), ("black", "-q")):
        # the tool beside this interpreter, run directly: what 'python -m ruff' runs,
        # without starting a Python first
        beside = os.path.join(
            sysconfig.get_path("scripts"), tool + (sysconfig.get_config_var("EXE") or "")
        )
        if os.path.isfile(beside) and os.access(beside, os.X_OK):
            return {
                "type": "exec",
                "executable": beside,
                "options": f"{arguments} REVISION_SCRIPT_FILENAME",
            }
        if importlib.util.find_spec(tool) is not None:
            return {
                "type": "module",
                "module": tool,
                "options": f"{arguments} REVISION_SCRIPT_FILENAME",
            }
        executable = shutil.which(tool)
        if executable is not None:
            return {
                "type": "exec",
                "executable": executable,
                "options": f"{arguments} REVISION_SCRIPT_FILENAME",
            }
    return None


def _add_format_hook(config: Config) -> None:
    parser = config.file_config
    if parser.has_option("post_write_hooks", "hooks"):
        return  # the project configured its own hooks in alembic.ini
    hook = _format_hook()
    if hook is None:
        return
    if not parser.has_section("post_write_hooks"):
        parser.add_section("post_write_hooks")
    config.set_section_option("post_write_hooks", "hooks", "entitydb_format")
    for key, value in hook.items():
        config.set_section_option(
            "post_write_hooks", f"entitydb_format.{key}", value.replace("%", "%%")
        )


def make_config(
    app: Flask,
    directory: str | os.PathLike[str] | None = None,
    *,
    x_args: Sequence[str] = (),
    on_apply: OnApply | None = None,
    on_start: OnStart | None = None,
    lock_timeout: float | None = None,
    on_lock: Notify | None = None,
    must_exist: bool = True,
    runs_env: bool = True,
    output_buffer: io.StringIO | None = None,
    writes_revisions: bool = False,
    engine: sa.Engine | None = None,
) -> EntityDBConfig:
    """An Alembic config for ``app``'s migrations folder.

    :param directory: the migrations folder (default: the app's configured folder).
    :param x_args: ``-x`` values for ``env.py`` (``context.get_x_argument()``).
    :param on_apply: called with each revision applied, reverted or stamped.
    :param on_start: called with each revision as it starts to run.
    :param lock_timeout: seconds to wait for the migration lock.
    :param on_lock: called with each notice of the migration lock.
    :param must_exist: raise :class:`MigrationError` when the folder does not exist.
    :param runs_env: the command will run ``env.py``: refuse Flask-Migrate's.
    :param output_buffer: where ``--sql`` output goes.
    :param writes_revisions: the command writes revision files: format them with ruff or
        black (Alembic post-write hook) unless ``alembic.ini`` configures its own hooks.
    :param engine: run ``env.py`` on this database instead of the bind's.
    """
    path = migrations_directory(app, directory)
    if must_exist:
        if not os.path.isdir(path) and directory is not None and os.fspath(directory):
            raise MigrationError(_given_folder_missing(app, os.fspath(directory), path))
        if not os.path.isdir(path):
            hint = _elsewhere_hint(path) if directory is None else ""
            if hint:
                raise MigrationError(f"There is no migrations folder at '{path}'{hint}.")
            key = selected_bind()
            if key is not None:
                raise MigrationError(
                    f"There is no migrations folder at '{path}' for the bind"
                    f" '{bind_name(key)}'; create it with 'flask db init --bind {key}'."
                )
            raise MigrationError(
                f"There is no migrations folder at '{path}'; create it with 'flask db init',"
                " or point to it with 'flask db -d <folder>' or 'ENTITYDB_MIGRATIONS_DIR'."
            )
        if runs_env:
            check_env(path)
    ini = os.path.join(path, "alembic.ini")
    run = MigrationRun(
        app=app,
        bind=selected_bind(),
        on_apply=on_apply,
        on_start=on_start,
        lock_timeout=lock_timeout,
        on_lock=on_lock,
        engine=engine,
    )
    config = EntityDBConfig(
        ini if (os.path.isfile(ini) or not must_exist) else None,
        output_buffer=output_buffer,
        stdout=io.StringIO(),
        cmd_opts=argparse.Namespace(x=list(x_args), quiet=True),
        attributes={RUN_KEY: run},
    )
    if must_exist:
        check_ini(config, path)
    config.set_main_option("script_location", path.replace("%", "%%"))
    if writes_revisions:  # before the files are loaded: their ScriptDirectory runs the hooks
        _add_format_hook(config)
    if must_exist:
        check_revision_files(config)
    return config
