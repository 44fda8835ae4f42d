"""Building an app's engines and choosing the engine for each statement.

Engines are Flask-SQLAlchemy's (``SQLALCHEMY_DATABASE_URI`` / ``SQLALCHEMY_ENGINE_OPTIONS``
are written from the resolved :class:`~flask_entitydb.config.Settings`); this module adds the
per-connection checks to them, and :class:`EntitySession` routes statements to them.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as _FlaskSQLAlchemySession

from .config import Settings
from .connection import install_listeners

log = logging.getLogger("flask_entitydb")


def setup_engines(app: Flask, sqlalchemy: SQLAlchemy, settings: Settings) -> None:
    """Create ``app``'s engines with Flask-SQLAlchemy from ``settings`` and attach the
    per-connection checks to each."""
    # Flask-SQLAlchemy reads its per-app engine configuration from app.config.
    app.config["SQLALCHEMY_DATABASE_URI"] = settings.url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(settings.engine_options)
    sqlalchemy.init_app(app)
    with app.app_context():
        install_listeners(
            sqlalchemy.engine,
            require_tls=settings.require_tls,
            source=settings.url_source,
        )


class EntitySession(_FlaskSQLAlchemySession):
    """Flask-SQLAlchemy's session, minus its per-statement engine lookup when the app has
    a single engine (the usual case): that engine is found once, when the session is
    created, instead of on every flush and query (see ``benchmarks/README.md``)."""

    def __init__(self, db: SQLAlchemy, **kwargs: Any) -> None:
        super().__init__(db, **kwargs)
        engines = db.engines
        self._single_engine = engines.get(None) if len(engines) == 1 else None

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: sa.Engine | sa.Connection | None = None,
        **kwargs: Any,
    ) -> sa.Engine | sa.Connection:
        if bind is None and self._single_engine is not None:
            return self._single_engine
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)

    def close(self) -> None:
        """Close the session; a connection the database has dropped is discarded instead
        of rolled back, so the teardown at the end of a request never raises for it.

        Done here rather than in a teardown function of our own: Flask-SQLAlchemy's
        teardown already calls it, and a second teardown would cost every request (even
        one that never touches the database) a dozen function calls.
        """
        try:
            super().close()
        except (sa.exc.DBAPIError, sa.exc.DisconnectionError) as error:
            log.warning(
                "Discarded a database connection that failed while closing the session: %s",
                type(error).__name__,
            )
            self.invalidate()
