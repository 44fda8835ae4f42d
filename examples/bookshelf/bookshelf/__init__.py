"""Bookshelf: the flask-entitydb example app.

Run it on the embedded SQLite default (a file in the instance folder)::

    flask --app bookshelf db upgrade
    flask --app bookshelf run

or against MySQL/MariaDB by setting ``DB_CONNECTION_STRING`` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from .database import db


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the app. ``config`` overrides settings (tests pass theirs here)."""
    app = Flask(__name__)
    app.config.from_prefixed_env()  # FLASK_* environment variables, e.g. FLASK_SECRET_KEY
    if config:
        app.config.update(config)
    db.init_app(app)

    from werkzeug.exceptions import HTTPException

    from .views import api, http_error, pages

    app.register_blueprint(pages)
    app.register_blueprint(api, url_prefix="/api")
    app.register_error_handler(HTTPException, http_error)
    return app
