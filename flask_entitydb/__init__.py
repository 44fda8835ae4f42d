"""flask-entitydb: SQLAlchemy entities, ``DB_CONNECTION_STRING`` and safe Alembic
migrations for Flask, in one extension."""

from ._version import __version__
from .discovery import EntityDiscoveryWarning
from .entity import NAMING_CONVENTION, Entity
from .errors import (
    ConfigurationError,
    EntityDBError,
    EntityDiscoveryError,
    LockTimeoutError,
    MigrationError,
)
from .extension import EntityDB, EntityDBState

__all__ = [
    "NAMING_CONVENTION",
    "ConfigurationError",
    "Entity",
    "EntityDB",
    "EntityDBError",
    "EntityDBState",
    "EntityDiscoveryError",
    "EntityDiscoveryWarning",
    "LockTimeoutError",
    "MigrationError",
    "__version__",
]
