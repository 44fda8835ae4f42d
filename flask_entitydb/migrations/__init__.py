"""Alembic-backed migrations: the ``flask db`` commands' Python API, and
:func:`run_migrations`, the one function a generated ``env.py`` calls.

Every command has a function of the same name that returns values instead of printing:
:func:`upgrade` returns the :class:`AppliedRevision` list, :func:`check` a
:class:`CheckResult`, :func:`migrate` the :class:`NewRevision` (or ``None``), and so on.
They use the current app (or ``app=``) and its migrations folder (or ``directory=``).

Coming from Flask-Migrate
    Keep the migrations folder and its revisions; the version table is the same. Replace
    Flask-Migrate's ``env.py`` (which needs Flask-Migrate's extension object, and calls
    ``fileConfig``, which disables the app's loggers) with flask-entitydb's by running
    ``flask db init --replace-env``, then remove ``Migrate(app, db)``. Until then, the
    commands that run ``env.py`` stop with a message saying exactly that. ``alembic.ini``
    may stay as it is (its logging sections are never applied); to run Alembic directly
    it needs ``script_location = %(here)s``, as the one ``flask db init`` writes has
    (``--replace-env`` adds it, or replaces a ``script_location = .``).

    The functions Flask-Migrate also has take its arguments in its order, the folder
    first: ``upgrade(directory, revision)``.

Coming from a hand-made Alembic ``env.py``
    Replace its body with ``run_migrations()`` (``flask db init --replace-env``); options
    it passed to ``context.configure()`` can be passed to :func:`run_migrations`.

Importing this package is cheap: Alembic is only imported when one of these names is
first used (``flask db --help`` and apps that never migrate do not pay for it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask_entitydb._lazy import lazy_exports

if TYPE_CHECKING:
    from flask_entitydb.migrations._inspect import (
        branches,
        check,
        check_revisions,
        current,
        heads,
        history,
        pending_revisions,
        show,
    )
    from flask_entitydb.migrations._lint.results import LintFinding, LintResult
    from flask_entitydb.migrations._linting import lint
    from flask_entitydb.migrations._repairing import repair
    from flask_entitydb.migrations._revisions import (
        edit,
        init,
        list_templates,
        merge,
        migrate,
        replace_env_file,
        revision,
    )
    from flask_entitydb.migrations._run import DEFAULT_LOCK_TIMEOUT
    from flask_entitydb.migrations._running import (
        OnApply,
        OnStart,
        downgrade,
        downgrade_sql,
        stamp,
        stamp_sql,
        upgrade,
        upgrade_sql,
    )
    from flask_entitydb.migrations._squash.command import squash
    from flask_entitydb.migrations._squash.result import SquashResult
    from flask_entitydb.migrations.environment import run_migrations
    from flask_entitydb.migrations.online import online_ddl
    from flask_entitydb.migrations.results import (
        AppliedRevision,
        CheckResult,
        EnvReplacement,
        NewRevision,
        RepairResult,
        RevisionInfo,
        StartedRevision,
    )

_EXPORTS = {
    "AppliedRevision": "results",
    "CheckResult": "results",
    "EnvReplacement": "results",
    "NewRevision": "results",
    "RevisionInfo": "results",
    "RepairResult": "results",
    "repair": "_repairing",
    "StartedRevision": "results",
    "DEFAULT_LOCK_TIMEOUT": "_run",
    "run_migrations": "environment",
    "LintFinding": "_lint.results",
    "LintResult": "_lint.results",
    "lint": "_linting",
    "SquashResult": "_squash.result",
    "squash": "_squash.command",
    "online_ddl": "online",
    "edit": "_revisions",
    "init": "_revisions",
    "list_templates": "_revisions",
    "merge": "_revisions",
    "migrate": "_revisions",
    "replace_env_file": "_revisions",
    "revision": "_revisions",
    "OnApply": "_running",
    "OnStart": "_running",
    "downgrade": "_running",
    "downgrade_sql": "_running",
    "stamp": "_running",
    "stamp_sql": "_running",
    "upgrade": "_running",
    "upgrade_sql": "_running",
    "branches": "_inspect",
    "check": "_inspect",
    "check_revisions": "_inspect",
    "current": "_inspect",
    "heads": "_inspect",
    "history": "_inspect",
    "pending_revisions": "_inspect",
    "show": "_inspect",
}

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "AppliedRevision",
    "CheckResult",
    "EnvReplacement",
    "LintFinding",
    "LintResult",
    "NewRevision",
    "OnApply",
    "OnStart",
    "RepairResult",
    "RevisionInfo",
    "SquashResult",
    "StartedRevision",
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
    "lint",
    "list_templates",
    "merge",
    "migrate",
    "online_ddl",
    "pending_revisions",
    "repair",
    "replace_env_file",
    "revision",
    "run_migrations",
    "show",
    "squash",
    "stamp",
    "stamp_sql",
    "upgrade",
    "upgrade_sql",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
