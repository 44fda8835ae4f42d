"""Per-app state: what :meth:`EntityDB.init_app` sets up for one app.

The bottom of the package: it imports nothing of flask-entitydb's at run time, so every
other module (``migrations/``, ``cli``, the pytest plugin) can reach an app's state without
importing :mod:`flask_entitydb.extension`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from .config import Settings
    from .discovery import Discovery
    from .engines import Routes
    from .extension import EntityDB

EXTENSION_KEY = "entitydb"
"""The key of the state in ``app.extensions``."""


@dataclass(frozen=True)
class EntityDBState:
    """What :meth:`EntityDB.init_app` sets up for one app, kept in
    ``app.extensions["entitydb"]``."""

    db: EntityDB
    settings: Settings
    discovery: Discovery
    routes: Routes | None = None
    """The app's engines by bind key, and its read replica router."""
    model_modules: tuple[str, ...] = ()
    """With ``flask_sqlalchemy_models``: the modules imported for the models
    (``ENTITYDB_MODEL_MODULES``, default the app's ``models``)."""


def find_state(app: Flask) -> EntityDBState | None:
    """The EntityDB state of ``app``, or ``None`` when the app does not use EntityDB."""
    state = app.extensions.get(EXTENSION_KEY)
    return state if isinstance(state, EntityDBState) else None
