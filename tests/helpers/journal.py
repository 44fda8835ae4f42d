"""Reading the migration journal in tests."""

from __future__ import annotations

import sqlalchemy as sa


def journal_rows(url: str, table: str = "flask_entitydb_journal") -> list[tuple[str, int, str]]:
    """``(revision, seq, state)`` of every journal row, in order (none: no table yet)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(table):
                return []
            rows = connection.execute(
                sa.text(f"SELECT revision, seq, state FROM {table} ORDER BY revision, seq")
            )
            return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]
    finally:
        engine.dispose()
