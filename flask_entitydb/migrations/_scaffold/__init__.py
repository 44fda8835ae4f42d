"""Scaffolding (internal): the migrations folder and its checks, the ``env.py`` and
``alembic.ini`` that ``flask db init`` writes or replaces, and the templates."""
