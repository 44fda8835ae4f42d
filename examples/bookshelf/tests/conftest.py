"""The bookshelf's test setup: one app on the test database of flask-entitydb's plugin.

The plugin (active whenever flask-entitydb is installed) gives ``entitydb_url``: a
throwaway SQLite file by default, or the database of ``--entitydb-url`` /
``ENTITYDB_TEST_URL``. Its schema is built once with the app's real migrations.
"""

from __future__ import annotations

import pytest
from flask import Flask

from bookshelf import create_app


@pytest.fixture(scope="session")
def app(entitydb_url: str) -> Flask:
    """The app under test; pytest-flask's ``client`` fixture uses it."""
    return create_app({"TESTING": True, "DB_CONNECTION_STRING": entitydb_url})
