"""``flask db lint``, the API function: it chooses the revisions, records their
operations without a database (:mod:`._lint.record`) and has them judged
(:mod:`._lint.judge`). A module of its own so that the other commands do not import the
lint machinery.
"""

from __future__ import annotations

from dataclasses import replace

from alembic.script import Script, ScriptDirectory
from flask import Flask

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._config import make_config
from flask_entitydb.migrations._context import PathArg, current_flask_app, database_heads, running
from flask_entitydb.migrations._lint.judge import judge
from flask_entitydb.migrations._lint.record import record
from flask_entitydb.migrations._lint.results import LintResult
from flask_entitydb.migrations.binds import bind_database, bind_engine, bind_name, selected_bind


def _selected(
    script: ScriptDirectory, rev_range: str | None, found: tuple[str, ...] | None
) -> list[Script]:
    """The revisions to lint, oldest first: a ``start:end`` range, one revision, every
    revision (``found`` is ``None``), or those not applied to a database at ``found``."""
    if rev_range:
        if ":" in rev_range:
            base, top = (part.strip() or None for part in rev_range.split(":", 1))
            chosen = list(script.walk_revisions(base=base or "base", head=top or "heads"))
        else:
            chosen = [s for s in script.get_revisions(rev_range) if s is not None]
        return list(reversed(chosen))
    everything = list(reversed(list(script.walk_revisions())))
    if found is None:
        return everything
    applied: set[str] = set()
    for rev in found:
        applied.update(s.revision for s in script.iterate_revisions(rev, "base"))
    return [s for s in everything if s.revision not in applied]


def lint(
    rev_range: str | None = None,
    *,
    all_revisions: bool = False,
    directory: PathArg = None,
    app: Flask | None = None,
) -> LintResult:
    """Lint revisions for the app's database dialect (``flask db lint``); the revisions
    of the bind selected with :func:`~flask_entitydb.migrations.binds.using_bind`.

    :param rev_range: ``start:end``, ``start:``, ``:end`` or one revision; default: the
        revisions not applied to the database (``all_revisions``: every revision).
    :returns: a :class:`LintResult`; ``result.ok`` is false when a hazard that is not
        marked ``# entitydb: allow <rule>`` was found.
    :raises MigrationError: no migrations folder, unknown revision, database unreachable
        (for the default range), squawk missing (PostgreSQL).
    """
    app = current_flask_app(app)
    with running(app) as state:
        settings = state.settings
        key = selected_bind()
        url = bind_database(state, key).url
        reads_db = not rev_range and not all_revisions
        config = make_config(app, directory, runs_env=reads_db)
        script = ScriptDirectory.from_config(config)
        found = database_heads(config) if reads_db else None
        try:
            chosen = _selected(script, rev_range, found)
        except Exception as error:
            raise MigrationError(
                f"Unknown revision range '{rev_range}' ({error}); use 'start:end', a revision"
                " id, or '--all'."
            ) from None
        linted = {s.revision for s in chosen}
        order = list(reversed(list(script.walk_revisions())))
        last = max((order.index(s) for s in chosen), default=-1)
        recorded = record(order[: last + 1], url)
        engine = bind_engine(state, key)
        result = judge(
            recorded,
            chosen,
            linted,
            engine,
            url,
            settings.migration_lock_timeout,
            settings.lint_max_rows,
        )
        return replace(result, bind=bind_name(key))
