"""The :class:`EntityDB` extension: configuration, engines and sessions for Flask apps."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import orm

from flask_entitydb._engine.routes import mark_bind_keys, tables_of
from flask_entitydb._engine.session import forced_primary, make_flask_sqlalchemy
from flask_entitydb._engine.setup import setup_engines
from flask_entitydb._settings.binds import with_entity_binds
from flask_entitydb._settings.load import load_settings
from flask_entitydb._settings.masking import mask_url
from flask_entitydb.discovery import discover_entities, report_warnings
from flask_entitydb.discovery._app_metadata import app_metadata, register_app
from flask_entitydb.discovery._fsa_models import (
    FlaskSQLAlchemyNames,
    import_model_modules,
    mapped_models,
)
from flask_entitydb.entity import Entity
from flask_entitydb.errors import ConfigurationError, EntityDBError
from flask_entitydb.state import EntityDBState, get_state, set_state

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy
    from flask_sqlalchemy.query import Query
    from flask_sqlalchemy.session import Session

    from flask_entitydb._engine.routes import Routes
    from flask_entitydb._settings.model import Settings
    from flask_entitydb.discovery._result import Discovery

_O = TypeVar("_O", bound=object)

log = logging.getLogger("flask_entitydb")


class EntityDB(FlaskSQLAlchemyNames):
    """Database access for Flask apps whose entities live in ``*_entity.py`` modules.

    :param app: the app to initialize now; or call :meth:`init_app` later.
    :param base: the declarative base entities subclass (default :class:`Entity`).
    :param engine_options: default :func:`sqlalchemy.create_engine` options for every app;
        ``ENTITYDB_ENGINE_OPTIONS`` in the app config wins over them.
    :param session_options: options for the session factory (``sessionmaker``).
    :param command_name: name of the CLI group added to ``app.cli``; ``None`` adds none.
    :param flask_sqlalchemy_models: offer Flask-SQLAlchemy's model API for apps switching
        from it: ``db.Model`` (the base, instead of ``base``), ``db.Column``,
        ``db.relationship``, ``db.Table``, ``Model.query`` and the rest of
        Flask-SQLAlchemy's ``db`` names; models may live in any module
        (``ENTITYDB_MODEL_MODULES``, default the app's ``models``).
    :param metadata: with ``flask_sqlalchemy_models``, the models' metadata (for a naming
        convention), as ``SQLAlchemy(metadata=...)``.
    :param model_class: with ``flask_sqlalchemy_models``, Flask-SQLAlchemy's
        ``model_class`` (a custom ``Model`` base, or a SQLAlchemy 2.0 declarative base).
    :param query_class: with ``flask_sqlalchemy_models``, the default class of
        ``Model.query`` (a subclass of ``flask_sqlalchemy.query.Query``); a model's own
        ``query_class`` attribute wins, as in Flask-SQLAlchemy.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        base: type[orm.DeclarativeBase] | None = None,
        engine_options: Mapping[str, Any] | None = None,
        session_options: Mapping[str, Any] | None = None,
        command_name: str | None = "db",
        flask_sqlalchemy_models: bool = False,
        metadata: sa.MetaData | None = None,
        model_class: Any = None,
        query_class: type[Query] | None = None,
    ) -> None:
        model_options: dict[str, Any] = {
            key: value
            for key, value in (
                ("metadata", metadata),
                ("model_class", model_class),
                ("query_class", query_class),
            )
            if value is not None
        }
        if flask_sqlalchemy_models and base is not None:
            raise TypeError(
                "EntityDB(flask_sqlalchemy_models=True) uses Flask-SQLAlchemy's 'db.Model' as"
                " the base; pass 'model_class=' instead of 'base='."
            )
        if model_options and not flask_sqlalchemy_models:
            names = ", ".join(f"'{name}'" for name in model_options)
            raise TypeError(
                f"EntityDB({names}=...) configures Flask-SQLAlchemy's models; add"
                " 'flask_sqlalchemy_models=True'."
            )
        self._flask_sqlalchemy_models = flask_sqlalchemy_models
        self._engine_options = dict(engine_options or {})
        self._command_name = command_name
        self._sqlalchemy = make_flask_sqlalchemy(session_options, model_options)
        self.base: type[orm.DeclarativeBase] = (
            self._sqlalchemy.Model  # type: ignore[assignment]
            if flask_sqlalchemy_models
            else base
            if base is not None
            else Entity
        )
        """The declarative base of this instance's entities (``db.Model`` with
        ``flask_sqlalchemy_models``)."""
        self.session: orm.scoped_session[Session] = self._sqlalchemy.session
        """The session of the current app context (Flask-SQLAlchemy's scoped session).

        It is created on first use, so a request that never touches it checks out no
        connection, and removed when the app context ends, which rolls back anything
        not committed and returns the connection to the pool.
        """
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        try:
            return f"<EntityDB {mask_url(self.engine.url)}>"
        except RuntimeError:
            return "<EntityDB>"

    def init_app(self, app: Flask) -> None:
        """Read ``app``'s configuration, create its engine, discover its entities and add
        the ``flask db`` commands.

        :raises ConfigurationError: the configuration is invalid.
        :raises EntityDiscoveryError: an entity package or module cannot be imported.
        :raises RuntimeError: EntityDB (or Flask-SQLAlchemy) is already set up on ``app``.
        """
        if get_state(app, optional=True) is not None:
            raise RuntimeError(
                "An 'EntityDB' instance has already been registered on this Flask app;"
                " import and use that instance instead."
            )
        if "sqlalchemy" in app.extensions:
            raise RuntimeError(
                "A Flask-SQLAlchemy 'SQLAlchemy' instance is already registered on this app;"
                " EntityDB provides 'db.session' itself, remove the other instance."
            )
        try:
            settings, discovery, routes = self._configure(app)
        except EntityDBError as error:
            if not self._help_only(error):
                raise
            self._add_commands(app)
            return
        set_state(
            app,
            EntityDBState(
                db=self,
                settings=settings,
                discovery=report_warnings(discovery),
                routes=routes,
                model_modules=settings.model_modules,
            ),
        )
        register_app(app)
        if routes.router is not None:
            from flask_entitydb._engine.replica_reads import install_routing

            install_routing(app, self._sqlalchemy.session, routes.router)
        app.shell_context_processor(_shell_context)
        if settings.pending_migrations != "ignore":
            from flask_entitydb.migrations._guard import install_pending_migrations_guard

            install_pending_migrations_guard(app)
        self._add_commands(app)

    def _add_commands(self, app: Flask) -> None:
        if self._command_name:
            from flask_entitydb.cli import db_group

            app.cli.add_command(db_group, self._command_name)

    @staticmethod
    def _help_only(error: EntityDBError) -> bool:
        """Under ``flask ... --help``, warn about ``error`` instead of failing (the
        commands are added, so their help shows); whether that is the case."""
        from flask_entitydb.cli._help import help_requested, warn_help_only

        if not help_requested():
            return False
        warn_help_only(error)
        return True

    def _configure(self, app: Flask) -> tuple[Settings, Discovery, Routes]:
        settings = load_settings(
            app, self._engine_options, model_modules=self._flask_sqlalchemy_models
        )
        discovery = discover_entities(
            app.import_name,
            self.base,
            entity_packages=settings.entity_packages,
            entry_points=settings.entry_points,
            # models are in the app's own modules, imported by the app
            warn_if_empty=not self._flask_sqlalchemy_models,
        )
        settings = with_entity_binds(app, settings, self._engine_options, mark_bind_keys(self.base))
        if settings.has_replicas and not app.secret_key:
            raise ConfigurationError(
                "Read replicas need the app's 'SECRET_KEY': each client's last write is"
                " kept in a cookie signed with it, so that it reads its own writes; set"
                " app.config['SECRET_KEY']."
            )
        return settings, discovery, setup_engines(app, self._sqlalchemy, settings)

    # -- per-app state -------------------------------------------------------------------

    def state(self, app: Flask | None = None) -> EntityDBState:
        """The :class:`EntityDBState` of ``app`` (default: the current app).

        :raises RuntimeError: the app was not initialized with this instance.
        """
        if app is None:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        state = get_state(app, optional=True)
        if state is None or state.db is not self:
            raise RuntimeError(
                "The current Flask app is not registered with this 'EntityDB' instance."
                " Did you forget to call 'init_app', or did you create multiple 'EntityDB'"
                " instances?"
            )
        return state

    @property
    def metadata(self) -> sa.MetaData:
        """The metadata of the current app's tables: those of :attr:`base`, without the
        tables that only other apps of the process discovered (when several apps share
        one base); outside an app context, the metadata of :attr:`base`.

        With ``flask_sqlalchemy_models``, inside an app context, the app's model modules
        (``ENTITYDB_MODEL_MODULES``) are imported first, so every model is in it."""
        if not has_app_context():
            return self.base.metadata
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        state = get_state(app, optional=True)
        if state is None or state.db is not self:
            return self.base.metadata
        if self._flask_sqlalchemy_models:
            import_model_modules(state.model_modules)
        return app_metadata(app, state)

    def _import_models(self) -> None:
        if not has_app_context():
            return
        state = get_state(current_app, optional=True)
        if state is not None and state.db is self:
            import_model_modules(state.model_modules)

    @property
    def entities(self) -> Mapping[str, type[orm.DeclarativeBase]]:
        """Read-only mapping of class name to entity class for the current app, in
        discovery order (with ``flask_sqlalchemy_models``: every model of ``db.Model``)."""
        state = self.state()
        if self._flask_sqlalchemy_models:
            self._import_models()
            return MappingProxyType(mapped_models(self.base))
        return state.discovery.entities

    @property
    def flask_sqlalchemy_models(self) -> bool:
        """Whether this instance offers Flask-SQLAlchemy's models (``db.Model``), as
        ``EntityDB(flask_sqlalchemy_models=True)``."""
        return self._flask_sqlalchemy_models

    @property
    def sqlalchemy(self) -> SQLAlchemy:
        """The :class:`flask_sqlalchemy.SQLAlchemy` instance this one runs on, for the
        extensions that take one (Flask-Session's ``SESSION_SQLALCHEMY``, ...).

        It is the instance registered as ``app.extensions["sqlalchemy"]``; its ``session``
        is :attr:`session` and its ``engine`` is :attr:`engine`, so what an extension
        does through it happens in the same session and database as the app.
        """
        return self._sqlalchemy

    @property
    def engine(self) -> sa.Engine:
        """The engine of the current app's default database (its primary)."""
        return self._sqlalchemy.engine

    @property
    def engines(self) -> Mapping[str | None, sa.Engine]:
        """The primary engine of each bind of the current app, by bind key (``None``: the
        default database)."""
        routes = self.state().routes
        return routes.engines if routes is not None else {None: self.engine}

    def primary(self) -> contextlib.AbstractContextManager[None]:
        """Send every statement of the current session to the primaries while the
        ``with`` block runs, or while the decorated view runs: reads that must see the
        very latest data (``with db.primary(): ...`` or ``@db.primary()``).

        Without read replicas it changes nothing.
        """
        return forced_primary(self.session)

    # -- Flask-SQLAlchemy conveniences ---------------------------------------------------

    def get_or_404(self, entity: type[_O], ident: Any, *, description: str | None = None) -> _O:
        """Like ``session.get()`` but aborts with ``404 Not Found`` when there is no row."""
        return self._sqlalchemy.get_or_404(entity, ident, description=description)

    def first_or_404(self, statement: sa.Select[Any], *, description: str | None = None) -> Any:
        """Like ``Result.scalar()`` but aborts with ``404 Not Found`` instead of ``None``."""
        return self._sqlalchemy.first_or_404(statement, description=description)

    def one_or_404(self, statement: sa.Select[Any], *, description: str | None = None) -> Any:
        """Like ``Result.scalar_one()`` but aborts with ``404 Not Found`` when there is not
        exactly one row."""
        return self._sqlalchemy.one_or_404(statement, description=description)

    def paginate(
        self,
        select: sa.Select[Any],
        *,
        page: int | None = None,
        per_page: int | None = None,
        max_per_page: int | None = None,
        error_out: bool = True,
        count: bool = True,
    ) -> Pagination:
        """Flask-SQLAlchemy's :meth:`~flask_sqlalchemy.SQLAlchemy.paginate` for a
        ``select()`` statement; ``page`` and ``per_page`` default to the request args."""
        return self._sqlalchemy.paginate(
            select,
            page=page,
            per_page=per_page,
            max_per_page=max_per_page,
            error_out=error_out,
            count=count,
        )

    def create_all(self) -> None:
        """Create every table that does not exist yet, without migrations.

        For tests and prototypes; use ``flask db upgrade`` for real databases. Each
        table is created in its bind's database.
        """
        for key, engine in self.engines.items():
            self.metadata.create_all(engine, tables=tables_of(self.metadata, key))

    def drop_all(self) -> None:
        """Drop every table of :attr:`metadata` (each in its bind's database). For tests
        and prototypes."""
        for key, engine in self.engines.items():
            self.metadata.drop_all(engine, tables=tables_of(self.metadata, key))


def _shell_context() -> dict[str, Any]:
    state = get_state(current_app)
    context: dict[str, Any] = dict(state.db.entities)
    context["db"] = state.db
    return context
