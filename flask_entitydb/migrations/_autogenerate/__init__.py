"""Autogenerate hooks (internal): what ``flask db migrate`` adds to Alembic's comparison
and to the revision file it writes (portable types, PostgreSQL casts and enums, online
DDL blocks, concurrent indexes, the guard against dropped tables)."""
