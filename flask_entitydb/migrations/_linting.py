"""``flask db lint``, the API function: it chooses the revisions, records their
operations without a database (:mod:`._lint.record`) and has them judged
(:mod:`._lint.judge`). A module of its own so that the other commands do not import the
lint machinery.
"""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from alembic.script import Script, ScriptDirectory
from flask import Flask

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._config import make_config
from flask_entitydb.migrations._context import PathArg, current_flask_app, database_heads, running
from flask_entitydb.migrations._lint.judge import judge
from flask_entitydb.migrations._lint.record import record
from flask_entitydb.migrations._lint.results import LintResult
from flask_entitydb.migrations._scaffold.folder import checked_script
from flask_entitydb.migrations._server_facts import MYSQL, server_is_mariadb
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
    applied = _applied(script, found)
    return [s for s in everything if s.revision not in applied]


def _judged_on_server(url: sa.URL) -> bool:
    return url.get_backend_name() in (*MYSQL, "postgresql")


def _heads_if_readable(
    app: Flask, directory: PathArg, script: ScriptDirectory
) -> tuple[str, ...] | None:
    """The database's revisions, read with the revisions already loaded, or ``None`` when
    they cannot be read (then the scratch database replays the history and a note says
    so)."""
    try:
        # the folder was checked by the caller's config; this one only runs env.py
        return database_heads(make_config(app, directory, must_exist=False), script)
    except (MigrationError, sa.exc.SQLAlchemyError):
        return None


def _applied(script: ScriptDirectory, heads: tuple[str, ...]) -> set[str]:
    applied: set[str] = set()
    for rev in heads:
        applied.update(s.revision for s in script.iterate_revisions(rev, "base"))
    return applied


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
        script = checked_script(config)  # the revisions make_config loaded
        found = database_heads(config, script) if reads_db else None
        try:
            chosen = _selected(script, rev_range, found)
        except Exception as error:
            raise MigrationError(
                f"Unknown revision range '{rev_range}' ({error}); use 'start:end', a revision"
                " id, or '--all'."
            ) from None
        linted = {s.revision for s in chosen}
        engine = bind_engine(state, key)
        order = list(reversed(list(script.walk_revisions())))
        place = {s.revision: index for index, s in enumerate(order)}
        earlier = order[: max((place[s.revision] for s in chosen), default=-1) + 1]
        before = {s.revision for s in earlier if s.revision not in linted}
        if found is None and chosen and _judged_on_server(url):
            found = _heads_if_readable(app, directory, script)
        applied = _applied(script, found) if found is not None else None
        seed = None
        mariadb = server_is_mariadb(engine)
        if applied == before:  # the database is at the revision before the linted ones
            from flask_entitydb.migrations._lint.scratch import Seed, touched_tables

            recorded = record(chosen, url, mariadb)
            operations = [item.operation for r in recorded for item in r.operations]
            seed = Seed(engine, touched_tables(operations))
        else:
            recorded = record(earlier, url, mariadb)
        at = ", ".join(found or ()) or "base" if found is not None else "unknown"
        at_previous = "" if applied == before else f"at {at}" if found is not None else None
        result = judge(
            recorded,
            chosen,
            linted,
            engine,
            url,
            settings.migration_lock_timeout,
            settings.lint_max_rows,
            seed=seed,
            replay_reason=f"the database (at {at}) is not at the revision before the linted ones",
            at_previous=at_previous,
        )
        return replace(result, bind=bind_name(key))
