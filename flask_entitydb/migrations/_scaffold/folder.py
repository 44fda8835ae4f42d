"""Checking a migrations folder before a command uses it.

A broken folder (an unparsable ``alembic.ini``, a missing ``env.py``, a revision file that
does not load or that names a revision no file defines) is reported as one
:class:`~flask_entitydb.MigrationError` naming the file, before anything touches the
database, instead of the exception Alembic raises somewhere in the middle of a command.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from types import TracebackType

from alembic.config import Config
from alembic.script import ScriptDirectory

from flask_entitydb._compat.alembic import revision_files
from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._failures import one_line

log = logging.getLogger("flask_entitydb")

ENV_MARKER = "flask_entitydb"
"""Text every flask-entitydb ``env.py`` contains (used to recognise one)."""


def check_ini(config: Config, path: str) -> None:
    """Parse ``alembic.ini`` now, so a broken one is reported with its name.

    :raises MigrationError: the file is not a valid ini file.
    """
    ini = os.path.join(path, "alembic.ini")
    try:
        parser = config.file_config
    except configparser.Error as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line})" if line else ""
        raise MigrationError(
            f"'{ini}' is not a valid ini file{where}: {one_line(error)}; fix it, or delete"
            " it if you only use 'flask db' (it is only needed to run Alembic directly)."
        ) from None
    location = parser.get("alembic", "script_location", raw=True, fallback=None)
    if location is not None and location.strip() in {".", "./"} and ini not in _warned:
        _warned.add(ini)
        log.warning(
            "'%s' says 'script_location = .', which Alembic run directly takes from the"
            " working directory (it finds no env.py outside the folder); run 'flask db"
            " init --replace-env' or write 'script_location = %%(here)s'.",
            ini,
        )


_warned: set[str] = set()


def check_env(directory: str) -> None:
    """Refuse a missing ``env.py``, and one written by Flask-Migrate (which needs
    Flask-Migrate's extension object), and say how to fix either."""
    env = os.path.join(directory, "env.py")
    if not os.path.isfile(env):
        raise MigrationError(
            f"The migrations folder '{directory}' has no env.py; run"
            " 'flask db init --replace-env' to write flask-entitydb's (your revisions are"
            " kept)."
        )
    try:
        with open(env, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        raise MigrationError(f"Cannot read '{env}': {one_line(error)}.") from None
    uses_flask_migrate = "extensions['migrate']" in text or 'extensions["migrate"]' in text
    if uses_flask_migrate and ENV_MARKER not in text:
        raise MigrationError(
            f"'{env}' was written by Flask-Migrate and needs its extension; run"
            " 'flask db init --replace-env' to use flask-entitydb's env.py instead (your"
            " revisions and alembic.ini are kept)."
        )


CHECKED_SCRIPT = "flask_entitydb.checked_script"
"""The key of ``config.attributes`` holding the ``ScriptDirectory`` that
:func:`check_revision_files` loaded (its revision map built)."""


def checked_script(config: Config) -> ScriptDirectory:
    """The revisions :func:`check_revision_files` loaded for ``config`` (loading 1,000
    revision files takes seconds: a command uses these, and gives them to Alembic's
    commands with :func:`~flask_entitydb._compat.alembic.script_reused`), else a new
    ``ScriptDirectory``."""
    script = config.attributes.get(CHECKED_SCRIPT)
    return script if isinstance(script, ScriptDirectory) else ScriptDirectory.from_config(config)


_kept: ContextVar[dict[str, ScriptDirectory] | None] = ContextVar(
    "flask_entitydb_kept_revisions", default=None
)


@contextlib.contextmanager
def revisions_kept() -> Iterator[None]:
    """Inside the block, each migrations folder's revision files are loaded once: a later
    config of the same folder gets the revisions the first one loaded, with the revisions
    written meanwhile through them (Alembic adds the file it writes to the map). For one
    command that writes a revision and reads the folder again (``flask db migrate`` and
    the lint of its new revision): the first config of a folder is the one that writes
    (its post-write hooks are the loaded revisions' too), and nothing else may change the
    folder in the block."""
    token = _kept.set({})
    try:
        yield
    finally:
        _kept.reset(token)


def check_revision_files(config: Config) -> None:
    """Load every revision file and link them, as any command will (once per folder
    inside :func:`revisions_kept`); the command gets them from :func:`checked_script`.

    :raises MigrationError: a file has a syntax error, fails to load, or names a
        ``down_revision`` (or ``depends_on``) that no file defines.
    """
    kept = _kept.get()
    folder = os.path.realpath(config.get_main_option("script_location") or ".")
    if kept is not None and folder in kept:
        config.attributes[CHECKED_SCRIPT] = kept[folder]
        return
    script = ScriptDirectory.from_config(config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            script.get_heads()
        except SyntaxError as error:
            line = f" on line {error.lineno}" if error.lineno else ""
            raise MigrationError(
                f"The revision file '{error.filename}' has a syntax error{line}:"
                f" {error.msg}; fix it and run the command again."
            ) from None
        except KeyError as error:
            missing = str(error.args[0]) if error.args else "?"
            raise MigrationError(_missing_parent(script, missing)) from None
        except MigrationError:
            raise
        except Exception as error:
            path = _file_in_traceback(error.__traceback__, script.dir)
            if path is None:
                raise
            raise MigrationError(
                f"The revision file '{path}' failed to load: {type(error).__name__}:"
                f" {one_line(error)}; fix it and run the command again."
            ) from None
    for warning in caught:  # the files loaded: the command uses them, without a reload
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    config.attributes[CHECKED_SCRIPT] = script
    if kept is not None:
        kept[folder] = script


def _missing_parent(script: ScriptDirectory, missing: str) -> str:
    where = f"no file in '{script.versions}' defines"
    naming: list[str] = []
    try:
        for found in revision_files(script):  # the map itself cannot be built
            parents = _as_tuple(found.down_revision) + _as_tuple(found.dependencies)
            if missing in parents:
                naming.append(os.path.abspath(found.path))
    except Exception:  # pragma: no cover - loading worked a moment ago
        naming = []
    if len(naming) == 1:
        return (
            f"The revision file '{naming[0]}' follows revision '{missing}', which {where};"
            " fix its down_revision (or restore the missing file) and run the command again."
        )
    return (
        f"A revision follows revision '{missing}', which {where}; fix its down_revision"
        " (or restore the missing file) and run the command again."
    )


def _as_tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(str(item) for item in value)
    return ()


def _file_in_traceback(traceback: TracebackType | None, folder: str) -> str | None:
    """The innermost file of the traceback that lies inside ``folder``."""
    root = os.path.realpath(folder) + os.sep
    found: str | None = None
    while traceback is not None:
        path = os.path.realpath(traceback.tb_frame.f_code.co_filename)
        if path.startswith(root) and path.endswith(".py"):
            found = path
        traceback = traceback.tb_next
    return found
