"""What ``flask db entities`` reports: the entities discovery found, the mapped classes
it did not find, the ``*_entity.py`` files it did not import, and its JSON document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from flask import Flask

from flask_entitydb.discovery import Discovery, EntityInfo
from flask_entitydb.discovery._undiscovered import (
    UndiscoveredModule,
    undiscovered_classes,
    undiscovered_modules,
)
from flask_entitydb.state import get_state


@dataclass(frozen=True)
class EntitiesReport:
    """The entities of an app and what discovery missed."""

    entities: tuple[EntityInfo, ...]
    """The discovered entities, then the mapped classes discovery did not find (their
    source is ``not discovered``)."""
    discovered: int
    """How many of :attr:`entities` discovery found."""
    searched: tuple[str, ...]
    """The places searched, described for people."""
    undiscovered_modules: tuple[UndiscoveredModule, ...]
    """The ``*_entity.py`` files of the project discovery did not import."""
    model_modules: tuple[str, ...] | None = None
    """With Flask-SQLAlchemy's models (``flask_sqlalchemy_models``), the modules of
    ``ENTITYDB_MODEL_MODULES``; ``None`` for an app of entity modules."""

    @property
    def not_discovered(self) -> bool:
        """Whether some mapped classes were imported by hand, not found by discovery."""
        return len(self.entities) > self.discovered

    def to_json(self, bind_of: Callable[[str], str]) -> dict[str, Any]:
        """The ``flask db entities --json`` document; ``bind_of`` names the bind of a
        table."""
        entities = [
            {
                "class": info.name,
                "table": info.table,
                "bind": bind_of(info.table),
                "module": info.module,
                "file": info.file,
                "source": info.source,
                "columns": info.columns,
                "discovered": info.source != "not discovered",
                "model": info.source == MODEL_SOURCE,
            }
            for info in self.entities
        ]
        undiscovered = [
            {"file": m.file, "path": m.path, "module": m.module, "imported": m.imported}
            for m in self.undiscovered_modules
        ]
        return {
            "entities": entities,
            "searched": list(self.searched),
            "undiscovered_modules": undiscovered,
        }


MODEL_SOURCE = "db.Model"
"""The source of a Flask-SQLAlchemy model in the report: found through the app's imports
and ``ENTITYDB_MODEL_MODULES``, not by discovery (which finds ``*_entity.py`` modules)."""


def entities_report(app: Flask) -> EntitiesReport:
    """What discovery found for ``app`` and what it missed."""
    state = get_state(app)
    discovery = cast(Discovery, state.discovery)
    others = undiscovered_classes(state, state.db.metadata)
    models = bool(getattr(state.db, "flask_sqlalchemy_models", False))
    if models:
        others = tuple(replace(info, source=MODEL_SOURCE) for info in others)
    return EntitiesReport(
        entities=discovery.details + others,
        discovered=len(discovery.details) + (len(others) if models else 0),
        searched=discovery.searched,
        undiscovered_modules=tuple(undiscovered_modules(app, state)),
        model_modules=tuple(state.model_modules) if models else None,
    )
