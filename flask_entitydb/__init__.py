"""flask-entitydb: SQLAlchemy entities, ``DB_CONNECTION_STRING`` and safe Alembic
migrations for Flask, in one extension.

The names below are imported on first use, so that importing the package (which pytest
does for the bundled plugin in every test run) does not import Flask and SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask_entitydb._lazy import lazy_exports
from flask_entitydb._version import __version__

if TYPE_CHECKING:
    from flask_entitydb.discovery import EntityDiscoveryWarning
    from flask_entitydb.entity import NAMING_CONVENTION, Entity
    from flask_entitydb.errors import (
        ConfigurationError,
        EntityDBError,
        EntityDiscoveryError,
        LockLostError,
        LockTimeoutError,
        MigrationError,
        ReplicaWriteError,
    )
    from flask_entitydb.extension import EntityDB
    from flask_entitydb.state import EntityDBState

_EXPORTS = {
    "NAMING_CONVENTION": "entity",
    "ConfigurationError": "errors",
    "Entity": "entity",
    "EntityDB": "extension",
    "EntityDBError": "errors",
    "EntityDBState": "state",
    "EntityDiscoveryError": "errors",
    "EntityDiscoveryWarning": "discovery",
    "LockLostError": "errors",
    "LockTimeoutError": "errors",
    "MigrationError": "errors",
    "ReplicaWriteError": "errors",
}

__all__ = [
    "NAMING_CONVENTION",
    "ConfigurationError",
    "Entity",
    "EntityDB",
    "EntityDBError",
    "EntityDBState",
    "EntityDiscoveryError",
    "EntityDiscoveryWarning",
    "LockLostError",
    "LockTimeoutError",
    "MigrationError",
    "ReplicaWriteError",
    "__version__",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
