"""Alembic-backed migrations: the ``flask db`` commands' Python API, and
:func:`run_migrations`, the one function a generated ``env.py`` calls.

Importing this package is cheap: Alembic is only imported when one of these names is
first used (``flask db --help`` and apps that never migrate do not pay for it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import (
        OnApply,
        branches,
        check,
        check_revisions,
        current,
        downgrade,
        downgrade_sql,
        edit,
        heads,
        history,
        init,
        merge,
        migrate,
        pending_revisions,
        revision,
        show,
        stamp,
        stamp_sql,
        upgrade,
        upgrade_sql,
    )
    from .environment import DEFAULT_LOCK_TIMEOUT, run_migrations
    from .results import AppliedRevision, CheckResult, NewRevision, RevisionInfo

_EXPORTS = {
    "AppliedRevision": "results",
    "CheckResult": "results",
    "NewRevision": "results",
    "RevisionInfo": "results",
    "DEFAULT_LOCK_TIMEOUT": "environment",
    "run_migrations": "environment",
    "OnApply": "api",
    "branches": "api",
    "check": "api",
    "check_revisions": "api",
    "current": "api",
    "downgrade": "api",
    "downgrade_sql": "api",
    "edit": "api",
    "heads": "api",
    "history": "api",
    "init": "api",
    "merge": "api",
    "migrate": "api",
    "pending_revisions": "api",
    "revision": "api",
    "show": "api",
    "stamp": "api",
    "stamp_sql": "api",
    "upgrade": "api",
    "upgrade_sql": "api",
}

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "AppliedRevision",
    "CheckResult",
    "NewRevision",
    "OnApply",
    "RevisionInfo",
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
    "merge",
    "migrate",
    "pending_revisions",
    "revision",
    "run_migrations",
    "show",
    "stamp",
    "stamp_sql",
    "upgrade",
    "upgrade_sql",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
