"""Reading the revisions and the database's place in them: ``show``, ``history``,
``heads``, ``branches``, ``current``, ``check`` (and its fast forms
``check_revisions`` and ``pending_revisions``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from flask import Flask

from flask_entitydb.discovery._undiscovered import undiscovered_modules
from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._autogenerate import changes as _changes
from flask_entitydb.migrations._autogenerate.cycles import cycles_sorted_later
from flask_entitydb.migrations._config import make_config
from flask_entitydb.migrations._context import (
    PathArg,
    current_flask_app,
    database_heads,
    head_ids,
    require_entities,
    revisions_reused,
    running,
    script_directory,
)
from flask_entitydb.migrations.binds import bind_engine, selected_bind
from flask_entitydb.migrations.results import CheckResult, RevisionInfo
from flask_entitydb.state import EntityDBState


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


def _as_tuple(value: Any) -> tuple[str, ...]:
    """One revision id, several, or none, as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _unapplied(script: ScriptDirectory, found: tuple[str, ...]) -> tuple[RevisionInfo, ...]:
    """The revisions not applied to a database at ``found``, oldest first."""
    applied: set[str] = set()
    for rev in found:
        applied.update(s.revision for s in script.iterate_revisions(rev, "base"))
    pending = [s for s in script.walk_revisions() if s.revision not in applied]
    return tuple(_info(s, found) for s in reversed(pending))


def show(
    directory: PathArg = None, revision: str = "head", *, app: Flask | None = None
) -> list[RevisionInfo]:
    """The revision(s) a symbol names: an id, ``head``, ``base``, ``current``, a branch
    label (``flask db show``); Flask-Migrate's ``show(directory, revision)``."""
    app = current_flask_app(app)
    with running(app):
        config = make_config(app, directory, runs_env=revision == "current")
        script = script_directory(config)
        if revision == "current":
            current = database_heads(config)
            return [_info(s, current) for s in script.get_revisions(current) if s is not None]
        return [_info(s) for s in script.get_revisions(revision) if s is not None]


def history(
    directory: PathArg = None,
    rev_range: str | None = None,
    verbose: bool = False,
    indicate_current: bool = False,
    *,
    journal: bool = False,
    app: Flask | None = None,
) -> list[RevisionInfo]:
    """The revisions, newest first (``flask db history``); Flask-Migrate's
    ``history(directory, rev_range, verbose, indicate_current)``.

    :param rev_range: ``start:end``, ``start:`` or ``:end``; ``current`` may be used.
    :param verbose: accepted for Flask-Migrate's signature: the returned
        :class:`RevisionInfo` has the details ``-v`` prints (``journal=True`` adds the
        migration journal).
    :param indicate_current: mark the revisions the database is at (reads the database).
    :param journal: fill :attr:`RevisionInfo.journal` from the migration journal (reads
        the database; ``flask db history -v``).
    """
    app = current_flask_app(app)
    base: str | None = None
    top: str | None = None
    if rev_range is not None:
        if ":" not in rev_range:
            raise MigrationError(
                f"The history range '{rev_range}' has no ':'; use 'start:end', 'start:' or ':end'."
            )
        base, top = (part.strip() or None for part in rev_range.split(":", 1))
    with running(app) as state:
        reads_db = indicate_current or "current" in (base, top)
        config = make_config(app, directory, runs_env=reads_db)
        current = database_heads(config) if reads_db else ()
        if base == "current":
            base = ",".join(current) or "base"
        if top == "current":
            top = ",".join(current) or "base"
        script = script_directory(config)
        infos = [
            _info(s, current if indicate_current else ())
            for s in script.walk_revisions(base=base or "base", head=top or "heads")
        ]
        return _with_journal(state, infos) if journal else infos


def heads(
    directory: PathArg = None,
    verbose: bool = False,
    resolve_dependencies: bool = False,
    *,
    app: Flask | None = None,
) -> list[RevisionInfo]:
    """The head revisions of the migrations folder (``flask db heads``)."""
    app = current_flask_app(app)
    with running(app):
        script = script_directory(make_config(app, directory, runs_env=False))
        found = (
            script.get_revisions("heads")
            if resolve_dependencies
            else script.get_revisions(script.get_heads())
        )
        return [_info(s, style="heads") for s in found if s is not None]


def branches(
    directory: PathArg = None, verbose: bool = False, *, app: Flask | None = None
) -> list[RevisionInfo]:
    """The branch points: revisions that two or more revisions follow
    (``flask db branches``); :attr:`RevisionInfo.next_revisions` names the branches.
    ``verbose`` is accepted for Flask-Migrate's signature (see :func:`history`)."""
    app = current_flask_app(app)
    with running(app):
        script = script_directory(make_config(app, directory, runs_env=False))
        return [_info(s, style="branches") for s in script.walk_revisions() if s.is_branch_point]


def current(
    directory: PathArg = None,
    verbose: bool = False,
    *,
    journal: bool = False,
    app: Flask | None = None,
) -> list[RevisionInfo]:
    """The revisions the database is at; empty when none was applied (``flask db
    current``). ``verbose`` is accepted for Flask-Migrate's signature (see
    :func:`history`).

    :param journal: fill :attr:`RevisionInfo.journal` from the migration journal
        (``flask db current -v``).
    """
    app = current_flask_app(app)
    with running(app) as state:
        config = make_config(app, directory)
        found = database_heads(config)
        script = script_directory(config)
        infos = [
            _info(s, found, style="current") for s in script.get_revisions(found) if s is not None
        ]
        return _with_journal(state, infos) if journal else infos


def _with_journal(state: EntityDBState, infos: list[RevisionInfo]) -> list[RevisionInfo]:
    """``infos`` with what the journal says of each: every attempt, when, by whom, how
    long and how it ended."""
    # the journal's code loads only when asked for (current -v, history --journal)
    from flask_entitydb.migrations._journal.report import journal_entries, journal_lines

    entries = journal_entries(
        bind_engine(state, selected_bind()), state.settings.migration_journal_table
    )
    return [
        dataclasses.replace(info, journal=journal_lines(entries[info.revision]))
        if info.revision in entries
        else info
        for info in infos
    ]


def _edited(
    state: EntityDBState, script: ScriptDirectory, found: tuple[str, ...]
) -> tuple[str, ...]:
    """The lines naming applied revisions edited since (``check``)."""
    from flask_entitydb.migrations._journal.report import edited_applied_revisions

    edited = edited_applied_revisions(
        bind_engine(state, selected_bind()), state.settings.migration_journal_table, script, found
    )
    return tuple(item.describe() for item in edited)


def check(
    directory: PathArg = None, *, x_args: Sequence[str] = (), app: Flask | None = None
) -> CheckResult:
    """Compare the database with the revisions and the entities (``flask db check``).

    :returns: a :class:`CheckResult`; ``result.ok`` is true when the database is at head
        and autogenerate finds no difference with the entities. When revisions are not
        applied, the entities are not compared (the differences would be those revisions).
    """
    app = current_flask_app(app)
    with running(app) as state:
        config = make_config(app, directory, x_args=x_args)
        script = script_directory(config)
        found = database_heads(config)
        at_head = head_ids(script)
        missed = tuple(m.describe() for m in undiscovered_modules(app, state))
        edited = _edited(state, script, found)
        if set(found) != set(at_head):
            return CheckResult(
                current=found,
                heads=at_head,
                unapplied=_unapplied(script, found),
                undiscovered=missed,
                edited=edited,
            )
        require_entities(state)
        differences: list[tuple[str, ...]] = []

        def capture(context: MigrationContext, rev: Any, scripts: list[Any]) -> None:
            operations = [op for upgrade in scripts[0].upgrade_ops_list for op in upgrade.ops]
            differences.append(_changes.describe_all(operations, context.dialect)[0])
            scripts[:] = []

        with cycles_sorted_later(), revisions_reused(config):
            command.revision(config, autogenerate=True, process_revision_directives=capture)
    return CheckResult(
        current=found,
        heads=at_head,
        changes=differences[0] if differences else (),
        undiscovered=missed,
        edited=edited,
    )


def pending_revisions(*, directory: PathArg = None, app: Flask | None = None) -> list[str]:
    """Ids of the revisions not yet applied to the database, oldest first (empty: the
    database is at head)."""
    return [info.revision for info in check_revisions(directory=directory, app=app).unapplied]


def check_revisions(*, directory: PathArg = None, app: Flask | None = None) -> CheckResult:
    """Like :func:`check`, but only compares the database's revision with the heads,
    without autogenerate (fast; no entity comparison)."""
    app = current_flask_app(app)
    with running(app):
        config = make_config(app, directory)
        script = script_directory(config)
        found = database_heads(config)
        at_head = head_ids(script)
        return CheckResult(current=found, heads=at_head, unapplied=_unapplied(script, found))


__all__ = [
    "branches",
    "check",
    "check_revisions",
    "current",
    "heads",
    "history",
    "pending_revisions",
    "show",
]
