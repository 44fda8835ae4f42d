"""The app's one :class:`~flask_entitydb.EntityDB` instance, bound in :func:`create_app`."""

from __future__ import annotations

from flask_entitydb import EntityDB

db = EntityDB()
