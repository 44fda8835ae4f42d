"""Copying the schema of some tables (no rows) from one database into another on the same
server: on MySQL/MariaDB each table's own ``SHOW CREATE TABLE`` (row format, character set,
indexes and foreign keys as the server holds them), on PostgreSQL SQLAlchemy's reflection
(columns, types, defaults, indexes, constraints, enum types).

``flask db migrate`` and ``flask db lint`` start their scratch database this way from the
live database (:mod:`._lint.scratch`) instead of replaying every revision; the cost
depends on the tables copied, not on the length of the history.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

_MYSQL_LINKS = """
SELECT TABLE_NAME, REFERENCED_TABLE_NAME
FROM information_schema.REFERENTIAL_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = DATABASE() AND UNIQUE_CONSTRAINT_SCHEMA = DATABASE()
"""

_POSTGRESQL_LINKS = """
SELECT child.relname, parent.relname
FROM pg_constraint c
JOIN pg_class child ON child.oid = c.conrelid
JOIN pg_class parent ON parent.oid = c.confrelid
JOIN pg_namespace n ON n.oid = child.relnamespace
JOIN pg_namespace pn ON pn.oid = parent.relnamespace
WHERE c.contype = 'f' AND n.nspname = current_schema() AND pn.nspname = current_schema()
"""


def table_names(connection: sa.Connection) -> set[str]:
    """The tables (not views) of the connection's database (default schema)."""
    return set(sa.inspect(connection).get_table_names())


def with_neighbours(connection: sa.Connection, tables: Collection[str]) -> set[str]:
    """``tables`` that exist, with the tables their foreign keys reference and the tables
    whose foreign keys reference them (one step each way): what a schema change of
    ``tables`` can depend on."""
    existing = table_names(connection)
    chosen = existing & set(tables)
    dialect = connection.dialect.name
    if dialect in ("mysql", "mariadb"):
        query = _MYSQL_LINKS
    elif dialect == "postgresql":
        query = _POSTGRESQL_LINKS
    else:
        return chosen
    links = [(str(child), str(parent)) for child, parent in connection.exec_driver_sql(query)]
    found = set(chosen)
    for child, parent in links:
        if child in chosen:
            found.add(parent)
        if parent in chosen:
            found.add(child)
    return found & existing


def copy_schema(
    source: sa.Connection, target: sa.Connection, tables: Collection[str] | None = None
) -> list[str]:
    """Create the tables ``tables`` (``None``: every table) of ``source``'s database, empty,
    in ``target``'s (on MySQL/MariaDB and PostgreSQL). Foreign keys to tables that are not
    copied are kept on MySQL/MariaDB (created with ``foreign_key_checks`` off); on
    PostgreSQL the referenced tables are copied too.

    :returns: the names of the tables created, sorted.
    :raises sqlalchemy.exc.DBAPIError: the server refused (a privilege, say).
    """
    names = sorted(table_names(source) if tables is None else tables)
    if not names:
        return []
    if source.dialect.name in ("mysql", "mariadb"):
        quote = source.dialect.identifier_preparer.quote_identifier
        target.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        try:
            for name in names:
                row = source.exec_driver_sql(f"SHOW CREATE TABLE {quote(name)}").one()
                target.exec_driver_sql(str(row[1]).replace("%", "%%"))
        finally:
            target.exec_driver_sql("SET SESSION foreign_key_checks = 1")
        target.commit()
        return names
    metadata = sa.MetaData()
    metadata.reflect(source, only=names, resolve_fks=True)
    metadata.create_all(target)
    target.commit()
    return sorted(metadata.tables)
