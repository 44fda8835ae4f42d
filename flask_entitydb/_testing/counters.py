"""Auto-increment counters and sequences between tests.

The outer transaction rolls back every row a test wrote, but not the numbers it drew:
PostgreSQL's ``nextval()`` and MySQL/MariaDB's ``AUTO_INCREMENT`` are not transactional, so
without help the second test's first row gets ``id == 2``. So the counters of the test
database are recorded once its schema is built (:func:`snapshot`), and at the start of each
test, before its outer transaction begins, those that moved are put back (:func:`restore`):

- PostgreSQL: one query of ``pg_sequences``, then ``setval()`` for each sequence that moved
  (``setval`` is not transactional either, so it holds after the previous test's rollback);
- MySQL/MariaDB: one query of ``information_schema.TABLES``, then ``ALTER TABLE ...
  AUTO_INCREMENT = n`` for each table whose counter moved (DDL, so it runs before the outer
  transaction; InnoDB never sets it below ``MAX(id) + 1``);
- SQLite: nothing to do, its counters (``sqlite_sequence``, the largest rowid) are part of
  the transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

Counters = dict[str, tuple[object, object]]
"""Counter name -> what :func:`restore` needs to put it back."""

_POSTGRESQL = (
    "SELECT format('%I.%I', schemaname, sequencename), last_value, start_value"
    " FROM pg_sequences WHERE schemaname = ANY (current_schemas(false))"
)
_MYSQL = (
    "SELECT TABLE_NAME, AUTO_INCREMENT, 0 FROM information_schema.TABLES"
    " WHERE TABLE_SCHEMA = DATABASE() AND AUTO_INCREMENT IS NOT NULL"
)


def _read(connection: sa.Connection) -> Counters:
    import sqlalchemy as sa

    dialect = connection.dialect
    if dialect.name == "postgresql":
        sql = _POSTGRESQL
    elif dialect.name in ("mysql", "mariadb"):
        if not getattr(dialect, "is_mariadb", False):
            # MySQL 8 caches these statistics for a day by default
            connection.exec_driver_sql("SET SESSION information_schema_stats_expiry = 0")
        sql = _MYSQL
    else:
        return {}
    rows = connection.execute(sa.text(sql)).all()
    connection.commit()  # leave no transaction open: the test's outer one comes next
    return {str(name): (value, start) for name, value, start in rows}


def snapshot(connection: sa.Connection) -> Counters:
    """The counters of the database of ``connection`` now (after its schema was built)."""
    return _read(connection)


def restore(connection: sa.Connection, baseline: Counters) -> list[str]:
    """Put the counters that moved since :func:`snapshot` back; the names of those reset.

    Runs outside a transaction and leaves none open."""
    import sqlalchemy as sa

    if not baseline:
        return []
    moved = [
        (name, baseline[name])
        for name, now in _read(connection).items()
        if name in baseline and now[0] != baseline[name][0]
    ]
    if not moved:
        return []
    quote = connection.dialect.identifier_preparer.quote
    for name, (value, start) in moved:
        if connection.dialect.name == "postgresql":
            # never drawn from (last_value NULL): back to its start, not yet called
            connection.execute(
                sa.text("SELECT setval(CAST(:name AS regclass), :value, :called)"),
                {
                    "name": name,
                    "value": start if value is None else value,
                    "called": value is not None,
                },
            )
        else:
            connection.exec_driver_sql(
                f"ALTER TABLE {quote(name)} AUTO_INCREMENT = {int(str(value))}"
            )
    connection.commit()
    return [name for name, _ in moved]
