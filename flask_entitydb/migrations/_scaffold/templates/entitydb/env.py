"""Alembic environment of this application, written by 'flask db init'.

The database, the entities (every discovered *_entity.py module) and the options come from
the Flask app; it works under 'flask db' and when Alembic is run directly. Keep this file as
it is: options belong in the app's config (ENTITYDB_* keys), or as keyword arguments of
run_migrations() (passed to Alembic's context.configure()).
"""

from flask_entitydb.migrations import run_migrations

run_migrations()
