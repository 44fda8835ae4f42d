"""A test schema that an app's own ``drop_all()`` emptied.

A suite written for Flask-SQLAlchemy often drops the tables in a fixture's teardown
(``db.drop_all()``). With the plugin the schema comes from the migrations, once per
session: ``drop_all()`` removes the entities' tables but not ``alembic_version``, which
still says *head*, so every later test fails with ``Table ... doesn't exist``. The plugin
notices any table drop made through SQLAlchemy (:func:`watch_drops`); before the next test
it looks for the entities' tables, and when some are missing it empties the database and
builds it again (:func:`empty_database`), saying so in one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

_dropped: list[bool] = [False]
_watching: list[bool] = [False]


def _note_drop(*_: Any, **__: Any) -> None:
    _dropped[0] = True


def watch_drops() -> None:
    """Start noting every ``DROP TABLE`` made through SQLAlchemy (``drop_all()``,
    ``Table.drop()``, Alembic's ``op.drop_table()``), once per process."""
    if _watching[0]:
        return
    import sqlalchemy as sa

    sa.event.listen(sa.Table, "after_drop", _note_drop)
    _watching[0] = True


def tables_were_dropped() -> bool:
    """Whether a table was dropped since the last call (and forget it)."""
    dropped = _dropped[0]
    _dropped[0] = False
    return dropped


def missing_tables(engine: sa.Engine, tables: list[sa.Table]) -> list[str]:
    """The names of ``tables`` that the database of ``engine`` does not have."""
    import sqlalchemy as sa

    inspector = sa.inspect(engine)
    return sorted(t.name for t in tables if not inspector.has_table(t.name, schema=t.schema))


def empty_database(engine: sa.Engine, metadata: sa.MetaData, tables: list[sa.Table]) -> None:
    """Drop every table of the database of ``engine`` (the version table included), and
    on PostgreSQL the enum types of ``tables``, so the migrations can build it again."""
    import sqlalchemy as sa

    found = sa.MetaData()
    found.reflect(engine)
    found.drop_all(engine)
    # reflected tables do not own the entities' enum types: drop those with the entities'
    # metadata (their tables are gone, so only the types are left to drop)
    metadata.drop_all(engine, tables=tables, checkfirst=True)
