"""Per-app state: what :meth:`EntityDB.init_app` sets up for one app, and
:func:`get_state`, the one way every module reaches it.

The bottom of the package's layers (``docs/architecture.md``): besides the settings it
holds (:mod:`flask_entitydb._settings`, below it) and the errors, it imports nothing of
flask-entitydb's, not even for types. What it keeps of the upper layers (the
:class:`EntityDB` object, the engines, the discovery result) it names through the small
protocols below, which list exactly what the rest of the package reads of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

from flask import Flask

from flask_entitydb.errors import ConfigurationError

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy import orm

    from flask_entitydb._settings.model import Settings

EXTENSION_KEY = "entitydb"
"""The key of the state in ``app.extensions`` (read it with :func:`get_state`)."""


class DatabaseHandle(Protocol):
    """What the package reads of the :class:`~flask_entitydb.EntityDB` object of a state."""

    @property
    def base(self) -> type[orm.DeclarativeBase]:
        """The declarative base of the app's entities."""

    @property
    def metadata(self) -> sa.MetaData:
        """The metadata of the current app's tables."""

    @property
    def engine(self) -> sa.Engine:
        """The current app's default engine."""

    @property
    def session(self) -> orm.scoped_session[Any]:
        """The session of the current app context."""

    @property
    def entities(self) -> Mapping[str, type[orm.DeclarativeBase]]:
        """The discovered entity classes by class name."""

    def create_all(self) -> None:
        """Create the tables of the metadata."""

    def drop_all(self) -> None:
        """Drop the tables of the metadata."""


class EngineRoutes(Protocol):
    """What the package reads of an app's engines (``flask_entitydb._engine``)."""

    @property
    def engines(self) -> Mapping[str | None, sa.Engine]:
        """The primary engine of each bind key (``None``: the default database)."""


class DiscoveryResult(Protocol):
    """What the package reads of an app's :class:`~flask_entitydb.discovery.Discovery`."""

    @property
    def entities(self) -> Mapping[str, type[orm.DeclarativeBase]]:
        """Class name -> entity class."""

    @property
    def files(self) -> frozenset[str]:
        """Real absolute paths of the imported entity modules."""

    @property
    def tables(self) -> frozenset[str]:
        """Keys of the discovered entities' tables."""

    @property
    def details(self) -> tuple[object, ...]:
        """One record per discovered entity."""

    @property
    def searched(self) -> tuple[str, ...]:
        """The places searched, described for people."""

    @property
    def shown(self) -> bool:
        """Whether the discovery warnings were already printed."""


@dataclass(frozen=True)
class EntityDBState:
    """What :meth:`EntityDB.init_app` sets up for one app, kept in
    ``app.extensions["entitydb"]`` and read with :func:`get_state`."""

    db: DatabaseHandle
    """The :class:`~flask_entitydb.EntityDB` instance."""
    settings: Settings
    discovery: DiscoveryResult
    """The :class:`~flask_entitydb.discovery.Discovery` of the app."""
    routes: EngineRoutes | None = None
    """The app's engines by bind key, and its read replica router
    (``flask_entitydb._engine``; ``None`` before the engines are made)."""
    model_modules: tuple[str, ...] = ()
    """With ``flask_sqlalchemy_models``: the modules imported for the models
    (``ENTITYDB_MODEL_MODULES``, default the app's ``models``)."""


@overload
def get_state(app: Flask) -> EntityDBState: ...
@overload
def get_state(app: Flask, *, optional: Literal[True]) -> EntityDBState | None: ...
def get_state(app: Flask, *, optional: bool = False) -> EntityDBState | None:
    """The EntityDB state of ``app``.

    :param optional: return ``None`` when ``app`` does not use EntityDB, instead of
        raising.
    :raises ConfigurationError: ``app`` does not use EntityDB (``db.init_app(app)`` was
        not called), unless ``optional``.
    """
    state = app.extensions.get(EXTENSION_KEY)
    # no isinstance() call: a new session reads the state on every request
    if state.__class__ is EntityDBState:
        return state
    if optional:
        return None
    raise ConfigurationError(
        f"The Flask app '{app.import_name}' does not use EntityDB; create it with"
        " 'db = EntityDB()' and call 'db.init_app(app)' in the app factory."
    )


def set_state(app: Flask, state: EntityDBState) -> None:
    """Keep ``state`` as the EntityDB state of ``app`` (done once, by ``init_app``)."""
    app.extensions[EXTENSION_KEY] = state
