"""The migrations self-test: upgrade, downgrade to base, upgrade, and no drift from the
entities."""

from __future__ import annotations

from flask import Flask

from flask_entitydb.pytest_plugin import check_migrations


def test_migrations(app: Flask) -> None:
    check_migrations(app)
