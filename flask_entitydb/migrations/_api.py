"""The Python API of ``flask db``: one function per command, returning values.

Every function works on the current app (pass ``app=`` to choose one) and its configured
migrations folder (pass ``directory=`` to choose another). They print nothing and never
configure logging; expected failures raise :class:`~flask_entitydb.MigrationError` (or
:class:`~flask_entitydb.LockTimeoutError`) with one clear sentence, no password in it.

The ``flask db`` commands are thin wrappers over these functions.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from alembic import command
from alembic.operations import ops
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from flask import Flask, current_app

from flask_entitydb.discovery._undiscovered import undiscovered_modules
from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._autogenerate import changes as _changes
from flask_entitydb.migrations._autogenerate import drops as _drops
from flask_entitydb.migrations._autogenerate.portable import drop_indexes_with_tables
from flask_entitydb.migrations._config import (
    ATTR_LOCK_TIMEOUT,
    ATTR_ON_APPLY,
    ATTR_ON_LOCK,
    EntityDBConfig,
    make_config,
    migrations_directory,
)
from flask_entitydb.migrations._failures import translated
from flask_entitydb.migrations._locks.locking import Notify
from flask_entitydb.migrations._scaffold import envfile
from flask_entitydb.migrations._scaffold.choice import available_templates, template_folder
from flask_entitydb.migrations.binds import bind_database, bind_metadata, mark_ini, selected_bind
from flask_entitydb.migrations.environment import DEFAULT_LOCK_TIMEOUT
from flask_entitydb.migrations.results import (
    AppliedRevision,
    CheckResult,
    EnvReplacement,
    NewRevision,
    RevisionInfo,
)
from flask_entitydb.state import EntityDBState, get_state

OnApply = Callable[[AppliedRevision], None]
"""Callback receiving each revision as soon as it is applied, reverted or stamped."""

PathArg = str | os.PathLike[str] | None

log = logging.getLogger("flask_entitydb")


# -- helpers -------------------------------------------------------------------------------


def _app(app: Flask | None) -> Flask:
    if app is not None:
        return app
    try:
        return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
    except RuntimeError:
        raise MigrationError(
            "No Flask app: call this inside 'with app.app_context():' or pass 'app=app'."
        ) from None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep Alembic's console chatter (post-write hook status lines) out of the caller's
    stdout: the API returns values instead."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@contextlib.contextmanager
def _running(app: Flask) -> Iterator[EntityDBState]:
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
        stack.enter_context(translated(database.url, database.url_source))
        yield state


def _script_directory(config: EntityDBConfig) -> ScriptDirectory:
    return ScriptDirectory.from_config(config)


def _history_line(script: Script, is_current: bool) -> str:
    """The line ``alembic history`` prints (``(current)`` where Alembic puts it)."""
    text = script.cmd_format(
        False, include_branches=True, include_parents=True, tree_indicators=False
    )
    if is_current:
        text += " (current)"
    if script.is_branch_point:
        text += " (branchpoint)"
    if script.is_merge_point:
        text += " (mergepoint)"
    return f"{text}, {script.doc}"


def _info(script: Script, current: Sequence[str] = (), *, style: str = "history") -> RevisionInfo:
    """A :class:`RevisionInfo`; ``style`` picks the Alembic command whose one-line format
    :attr:`RevisionInfo.line` has: ``history``, ``current``, ``heads`` or ``branches``."""
    is_current = script.revision in current
    if style == "current":
        line = script.cmd_format(False)
    elif style == "heads":
        line = script.cmd_format(False, include_branches=True, tree_indicators=False)
    elif style == "branches":
        line = script.cmd_format(False, include_branches=True)
    else:
        line = _history_line(script, is_current)
    details = script.log_entry.rstrip()
    return RevisionInfo(
        revision=script.revision,
        message=script.doc,
        down_revisions=_as_tuple(script.down_revision),
        branch_labels=tuple(sorted(script.branch_labels)),
        depends_on=tuple(_as_tuple(script.dependencies)),
        path=os.path.abspath(script.path),
        is_head=script.is_head,
        is_current=is_current,
        next_revisions=tuple(sorted(script.nextrev)),
        line=line,
        details=details,
    )


def _labels(value: str | Sequence[str] | None) -> str | list[str] | None:
    if value is None or isinstance(value, str):
        return value
    return list(value)


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _database_heads(config: EntityDBConfig) -> tuple[str, ...]:
    """The revisions the database is at, read through ``env.py`` (so its options, such as
    the version table, apply)."""
    script = _script_directory(config)
    found: list[tuple[str, ...]] = []

    def read(rev: Any, context: MigrationContext) -> list[Any]:
        found.append(tuple(context.get_current_heads()))
        return []

    with EnvironmentContext(config, script, fn=read, dont_mutate=True):
        script.run_env()
    heads = found[0] if found else ()
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


def _unapplied(script: ScriptDirectory, found: tuple[str, ...]) -> tuple[RevisionInfo, ...]:
    """The revisions not applied to a database at ``found``, oldest first."""
    applied: set[str] = set()
    for rev in found:
        applied.update(s.revision for s in script.iterate_revisions(rev, "base"))
    pending = [s for s in script.walk_revisions() if s.revision not in applied]
    return tuple(_info(s, found) for s in reversed(pending))


def _require_entities(state: EntityDBState) -> None:
    if bind_metadata(state.db.metadata, selected_bind()).tables:
        return
    raise _drops.no_entities_error(state)


def _head_ids(script: ScriptDirectory) -> tuple[str, ...]:
    """The revisions a database at head is at (heads that other heads depend on are
    implied by those, as in Alembic's version table)."""
    return tuple(s.revision for s in script.get_revisions("heads") if s is not None)


def _require_head(config: EntityDBConfig) -> tuple[str, ...]:
    current = _database_heads(config)
    heads = _head_ids(_script_directory(config))
    if set(current) != set(heads):
        at = ", ".join(f"'{rev}'" for rev in current) or "no revision (empty)"
        head = ", ".join(f"'{rev}'" for rev in heads)
        raise MigrationError(
            f"The database is at {at}, not at the head {head}; run 'flask db upgrade' first."
        )
    return current


def _new_revision(
    script: Script | None, found: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
) -> NewRevision:
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
    if isinstance(result, list):
        return result[0] if result else None
    return result


# -- commands ------------------------------------------------------------------------------


def init(
    directory: PathArg = None,
    *,
    package: bool = False,
    replace_env: bool = False,
    template: str | os.PathLike[str] | None = None,
    app: Flask | None = None,
) -> str:
    """Create the migrations folder: ``alembic.ini``, ``env.py``, ``script.py.mako``,
    ``README`` and ``versions/``.

    :param directory: where (default: the app's configured folder, ``migrations`` in the
        app's package).
    :param package: also write ``__init__.py`` files, making the folders packages.
    :param replace_env: do not create anything, only replace the ``env.py`` of an existing
        folder with flask-entitydb's (switching from Flask-Migrate or a hand-made
        ``env.py``; the revisions are kept), as :func:`replace_env_file` does.
    :param template: a bundled template's name (``entitydb``, the default;
        :func:`list_templates`) or the path of a template folder of your own.
    :returns: the folder's absolute path.
    """
    app = _app(app)
    path = migrations_directory(app, directory)
    if replace_env:
        replace_env_file(directory, app=app)
        return path
    if os.path.isdir(path) and os.listdir(path):
        raise MigrationError(
            f"The migrations folder '{path}' already exists and is not empty; use it as it"
            " is, or choose another folder with 'flask db -d <folder> init'."
        )
    with _running(app):
        config = make_config(app, directory, must_exist=False)
        with _quiet():
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
    app = _app(app)
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
    message: str | None = None,
    *,
    autogenerate: bool = False,
    allow_empty: bool = False,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | Sequence[str] | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    depends_on: str | Sequence[str] | None = None,
    allow_drop: _drops.AllowDrop = False,
    x_args: Sequence[str] = (),
    directory: PathArg = None,
    app: Flask | None = None,
) -> NewRevision | None:
    """Write a new revision file (``flask db revision``).

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
    app = _app(app)
    with _running(app) as state:
        config = make_config(app, directory, x_args=x_args, writes_revisions=True)
        if sql:
            config.set_main_option("revision_environment", "true")
        found: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        refused: list[str] = []
        if autogenerate:
            _require_entities(state)
            _require_head(config)

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

        with _quiet():
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
    if refused:
        raise MigrationError(refused[0])
    script = _single(result)
    if script is None and autogenerate:
        return None
    return _new_revision(script, found[0] if found else ((), ()))


def migrate(
    message: str | None = None,
    *,
    allow_empty: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | Sequence[str] | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    allow_drop: _drops.AllowDrop = False,
    x_args: Sequence[str] = (),
    directory: PathArg = None,
    app: Flask | None = None,
) -> NewRevision | None:
    """Autogenerate a revision from the entities (``flask db migrate``).

    Without ``message`` the revision is named after the changes found. A revision that
    drops a table is only written with ``allow_drop`` (see :func:`revision`).

    :returns: the new revision, or ``None`` when there was nothing to migrate.
    :raises MigrationError: the database is behind head (nothing is written), no entities
        were found, no migrations folder, database unreachable.
    """
    return revision(
        message,
        autogenerate=True,
        allow_empty=allow_empty,
        head=head,
        splice=splice,
        branch_label=branch_label,
        version_path=version_path,
        rev_id=rev_id,
        allow_drop=allow_drop,
        x_args=x_args,
        directory=directory,
        app=app,
    )


def edit(revision: str = "head", *, directory: PathArg = None, app: Flask | None = None) -> None:
    """Open a revision file in ``$EDITOR`` (``flask db edit``)."""
    app = _app(app)
    with _running(app):
        command.edit(make_config(app, directory), revision)


def merge(
    revisions: str | Sequence[str] = "heads",
    message: str | None = None,
    *,
    branch_label: str | Sequence[str] | None = None,
    rev_id: str | None = None,
    directory: PathArg = None,
    app: Flask | None = None,
) -> NewRevision:
    """Write a revision that merges two or more revisions, by default all heads
    (``flask db merge``)."""
    app = _app(app)
    with _running(app):
        config = make_config(app, directory, runs_env=False, writes_revisions=True)
        with _quiet():
            script = command.merge(
                config,
                _labels(revisions) or "heads",
                message=message,
                branch_label=_labels(branch_label),
                rev_id=rev_id,
            )
    return _new_revision(script)


def _migrate_database(
    run: Callable[[EntityDBConfig], None],
    *,
    lock_timeout: float,
    on_apply: OnApply | None,
    on_lock: Notify | None,
    x_args: Sequence[str],
    directory: PathArg,
    app: Flask | None,
) -> list[AppliedRevision]:
    app = _app(app)
    applied: list[AppliedRevision] = []

    def record(item: AppliedRevision) -> None:
        applied.append(item)
        if on_apply is not None:
            on_apply(item)

    attributes = {ATTR_ON_APPLY: record, ATTR_LOCK_TIMEOUT: lock_timeout, ATTR_ON_LOCK: on_lock}
    with _running(app):
        try:
            config = make_config(app, directory, x_args=x_args, attributes=attributes)
        except MigrationError as error:
            if not envfile.initialising_folder():
                raise
            # an app migrating at start-up, loaded by 'flask db init' (--replace-env):
            # the folder is what that command creates or fixes, so migrate afterwards
            log.warning("Skipped migrating at start-up while 'flask db init' runs: %s", error)
            return applied
        try:
            run(config)  # env.py's run_migrations() takes the migration lock
        except (CommandError, RevisionError) as error:
            if "Can't locate revision" in str(error):
                _database_heads(config)  # says so when the database's revision is unknown
            raise
    return applied


def _sql(
    run: Callable[[EntityDBConfig], None],
    *,
    x_args: Sequence[str],
    directory: PathArg,
    app: Flask | None,
) -> str:
    app = _app(app)
    buffer = io.StringIO()
    with _running(app):
        run(make_config(app, directory, x_args=x_args, output_buffer=buffer))
    return buffer.getvalue()


def upgrade(
    revision: str = "head",
    *,
    tag: str | None = None,
    x_args: Sequence[str] = (),
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_apply: OnApply | None = None,
    on_lock: Notify | None = None,
    directory: PathArg = None,
    app: Flask | None = None,
) -> list[AppliedRevision]:
    """Upgrade the database to ``revision`` (``flask db upgrade``).

    The migration lock is held for the whole run, so concurrent upgrades (replicas
    starting at once) apply each revision once; the others wait up to ``lock_timeout``
    seconds, then find nothing to do.

    :param on_apply: called with each revision as soon as it is applied.
    :param on_lock: called with a :class:`~flask_entitydb.migrations._locks.locking.LockNotice`
        when waiting for the lock starts and when it is taken (default: logged).
    :returns: the revisions applied, in order (empty: already there).
    :raises LockTimeoutError: the lock stayed taken for ``lock_timeout`` seconds.
    :raises MigrationError: a revision failed (the message names it and the state the
        database is left in), unknown revision, no migrations folder, database
        unreachable.
    """
    return _migrate_database(
        lambda config: command.upgrade(config, revision, tag=tag),
        lock_timeout=lock_timeout,
        on_apply=on_apply,
        on_lock=on_lock,
        x_args=x_args,
        directory=directory,
        app=app,
    )


def upgrade_sql(
    revision: str = "head",
    *,
    tag: str | None = None,
    x_args: Sequence[str] = (),
    directory: PathArg = None,
    app: Flask | None = None,
) -> str:
    """The SQL an upgrade to ``revision`` would run, without a database (``flask db
    upgrade --sql``); ``revision`` may be a ``from:to`` range."""
    return _sql(
        lambda config: command.upgrade(config, revision, sql=True, tag=tag),
        x_args=x_args,
        directory=directory,
        app=app,
    )


def downgrade(
    revision: str = "-1",
    *,
    tag: str | None = None,
    x_args: Sequence[str] = (),
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_apply: OnApply | None = None,
    on_lock: Notify | None = None,
    directory: PathArg = None,
    app: Flask | None = None,
) -> list[AppliedRevision]:
    """Downgrade the database to ``revision`` (default: one revision back; ``"base"``
    reverts every revision) (``flask db downgrade``). Holds the migration lock like
    :func:`upgrade`.

    :returns: the revisions reverted, in order.
    """
    return _migrate_database(
        lambda config: command.downgrade(config, revision, tag=tag),
        lock_timeout=lock_timeout,
        on_apply=on_apply,
        on_lock=on_lock,
        x_args=x_args,
        directory=directory,
        app=app,
    )


def downgrade_sql(
    revision: str,
    *,
    tag: str | None = None,
    x_args: Sequence[str] = (),
    directory: PathArg = None,
    app: Flask | None = None,
) -> str:
    """The SQL of a downgrade, without a database; ``revision`` is a ``from:to`` range
    such as ``"head:base"`` (``flask db downgrade --sql``)."""
    if ":" not in revision:
        raise MigrationError(
            f"'downgrade --sql' needs a range such as 'head:base', got '{revision}'; without"
            " a database the starting revision must be given."
        )
    return _sql(
        lambda config: command.downgrade(config, revision, sql=True, tag=tag),
        x_args=x_args,
        directory=directory,
        app=app,
    )


def stamp(
    revisions: str | Sequence[str] = "head",
    *,
    purge: bool = False,
    tag: str | None = None,
    x_args: Sequence[str] = (),
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_apply: OnApply | None = None,
    on_lock: Notify | None = None,
    directory: PathArg = None,
    app: Flask | None = None,
) -> list[AppliedRevision]:
    """Set the database's revision without running any migration (``flask db stamp``).

    :param purge: empty the version table first (for a table naming unknown revisions).
    """
    targets = [revisions] if isinstance(revisions, str) else list(revisions)
    return _migrate_database(
        lambda config: command.stamp(config, targets, tag=tag, purge=purge),
        lock_timeout=lock_timeout,
        on_apply=on_apply,
        on_lock=on_lock,
        x_args=x_args,
        directory=directory,
        app=app,
    )


def stamp_sql(
    revisions: str | Sequence[str] = "head",
    *,
    tag: str | None = None,
    x_args: Sequence[str] = (),
    directory: PathArg = None,
    app: Flask | None = None,
) -> str:
    """The SQL of a stamp, without a database (``flask db stamp --sql``)."""
    targets = [revisions] if isinstance(revisions, str) else list(revisions)
    return _sql(
        lambda config: command.stamp(config, targets, sql=True, tag=tag),
        x_args=x_args,
        directory=directory,
        app=app,
    )


def show(
    revision: str = "head", *, directory: PathArg = None, app: Flask | None = None
) -> list[RevisionInfo]:
    """The revision(s) a symbol names: an id, ``head``, ``base``, ``current``, a branch
    label (``flask db show``)."""
    app = _app(app)
    with _running(app):
        config = make_config(app, directory, runs_env=revision == "current")
        script = _script_directory(config)
        if revision == "current":
            current = _database_heads(config)
            return [_info(s, current) for s in script.get_revisions(current) if s is not None]
        return [_info(s) for s in script.get_revisions(revision) if s is not None]


def history(
    rev_range: str | None = None,
    *,
    indicate_current: bool = False,
    directory: PathArg = None,
    app: Flask | None = None,
) -> list[RevisionInfo]:
    """The revisions, newest first (``flask db history``).

    :param rev_range: ``start:end``, ``start:`` or ``:end``; ``current`` may be used.
    :param indicate_current: mark the revisions the database is at (reads the database).
    """
    app = _app(app)
    base: str | None = None
    top: str | None = None
    if rev_range is not None:
        if ":" not in rev_range:
            raise MigrationError(
                f"The history range '{rev_range}' has no ':'; use 'start:end', 'start:' or ':end'."
            )
        base, top = (part.strip() or None for part in rev_range.split(":", 1))
    with _running(app):
        reads_db = indicate_current or "current" in (base, top)
        config = make_config(app, directory, runs_env=reads_db)
        current = _database_heads(config) if reads_db else ()
        if base == "current":
            base = ",".join(current) or "base"
        if top == "current":
            top = ",".join(current) or "base"
        script = _script_directory(config)
        return [
            _info(s, current if indicate_current else ())
            for s in script.walk_revisions(base=base or "base", head=top or "heads")
        ]


def heads(
    *, resolve_dependencies: bool = False, directory: PathArg = None, app: Flask | None = None
) -> list[RevisionInfo]:
    """The head revisions of the migrations folder (``flask db heads``)."""
    app = _app(app)
    with _running(app):
        script = _script_directory(make_config(app, directory, runs_env=False))
        found = (
            script.get_revisions("heads")
            if resolve_dependencies
            else script.get_revisions(script.get_heads())
        )
        return [_info(s, style="heads") for s in found if s is not None]


def branches(*, directory: PathArg = None, app: Flask | None = None) -> list[RevisionInfo]:
    """The branch points: revisions that two or more revisions follow
    (``flask db branches``); :attr:`RevisionInfo.next_revisions` names the branches."""
    app = _app(app)
    with _running(app):
        script = _script_directory(make_config(app, directory, runs_env=False))
        return [_info(s, style="branches") for s in script.walk_revisions() if s.is_branch_point]


def current(*, directory: PathArg = None, app: Flask | None = None) -> list[RevisionInfo]:
    """The revisions the database is at; empty when none was applied (``flask db
    current``)."""
    app = _app(app)
    with _running(app):
        config = make_config(app, directory)
        found = _database_heads(config)
        script = _script_directory(config)
        return [
            _info(s, found, style="current") for s in script.get_revisions(found) if s is not None
        ]


def check(
    *, x_args: Sequence[str] = (), directory: PathArg = None, app: Flask | None = None
) -> CheckResult:
    """Compare the database with the revisions and the entities (``flask db check``).

    :returns: a :class:`CheckResult`; ``result.ok`` is true when the database is at head
        and autogenerate finds no difference with the entities. When revisions are not
        applied, the entities are not compared (the differences would be those revisions).
    """
    app = _app(app)
    with _running(app) as state:
        config = make_config(app, directory, x_args=x_args)
        script = _script_directory(config)
        found = _database_heads(config)
        head_ids = _head_ids(script)
        missed = tuple(m.describe() for m in undiscovered_modules(app, state))
        if set(found) != set(head_ids):
            return CheckResult(
                current=found,
                heads=head_ids,
                unapplied=_unapplied(script, found),
                undiscovered=missed,
            )
        _require_entities(state)
        differences: list[tuple[str, ...]] = []

        def capture(context: MigrationContext, rev: Any, scripts: list[Any]) -> None:
            operations = [op for upgrade in scripts[0].upgrade_ops_list for op in upgrade.ops]
            differences.append(_changes.describe_all(operations, context.dialect)[0])
            scripts[:] = []

        command.revision(config, autogenerate=True, process_revision_directives=capture)
    return CheckResult(
        current=found,
        heads=head_ids,
        changes=differences[0] if differences else (),
        undiscovered=missed,
    )


def pending_revisions(*, directory: PathArg = None, app: Flask | None = None) -> list[str]:
    """Ids of the revisions not yet applied to the database, oldest first (empty: the
    database is at head)."""
    return [info.revision for info in check_revisions(directory=directory, app=app).unapplied]


def check_revisions(*, directory: PathArg = None, app: Flask | None = None) -> CheckResult:
    """Like :func:`check`, but only compares the database's revision with the heads,
    without autogenerate (fast; no entity comparison)."""
    app = _app(app)
    with _running(app):
        config = make_config(app, directory)
        script = _script_directory(config)
        found = _database_heads(config)
        head_ids = _head_ids(script)
        return CheckResult(current=found, heads=head_ids, unapplied=_unapplied(script, found))


__all__ = [
    "OnApply",
    "branches",
    "check",
    "check_revisions",
    "current",
    "downgrade",
    "downgrade_sql",
    "edit",
    "heads",
    "history",
    "init",
    "list_templates",
    "merge",
    "migrate",
    "pending_revisions",
    "replace_env_file",
    "revision",
    "show",
    "stamp",
    "stamp_sql",
    "upgrade",
    "upgrade_sql",
]
