"""Adapters for the private APIs of other libraries (internal): the one place
flask-entitydb uses a name that Flask, SQLAlchemy or Alembic do not document, one module
per library, each use a small function with a test that fails when the upstream
behaviour changes (``tests/test_compat.py``, ``tests/test_compat_alembic.py``).

The bottom of the package's layers: it imports only third-party libraries.
"""
