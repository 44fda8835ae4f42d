"""Adapters for the private APIs of other libraries (internal): the one place
flask-entitydb uses a name that Flask, Flask-SQLAlchemy, SQLAlchemy or Alembic do not
document, one module per library, each use a small function with a test in
``tests/test_compat.py`` that fails when the upstream behaviour changes.

The bottom of the package's layers: it imports only third-party libraries.
"""
