"""The rows the history left in its tables (seed data inserted by ``op.execute`` or
``op.bulk_insert``), as ``op.bulk_insert`` calls of the squashed revision, and on
PostgreSQL the sequences' positions as ``setval`` calls, so that a database started from
the squashed revision has them too. A table whose rows cannot be written as Python
literals, or with more than :data:`MAX_SEED_ROWS`, is left out: the proof then lists the
difference."""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

MAX_SEED_ROWS = 1_000
"""Rows of one table the squashed revision inserts at most."""


@dataclass
class Seed:
    """The statements of the squashed revision's ``upgrade()`` after its tables."""

    lines: list[str] = field(default_factory=list)
    imports: set[str] = field(default_factory=set)
    """Modules the literals need (``datetime``, ``decimal``, ``uuid``)."""


class _Unwritable(Exception):
    """A value with no Python literal here."""


def seed(engine: sa.Engine, metadata: sa.MetaData) -> Seed:
    """The inserts and sequence positions of the database of ``engine``."""
    found = Seed()
    with engine.connect() as connection:
        quote = connection.dialect.identifier_preparer.quote
        for table in metadata.sorted_tables:
            count = connection.scalar(sa.text(f"SELECT COUNT(*) FROM {quote(table.name)}"))
            if not count or count > MAX_SEED_ROWS:
                continue
            result = connection.execute(sa.text(f"SELECT * FROM {quote(table.name)}"))
            keys = list(result.keys())
            try:
                rows = [_row(keys, row, found.imports) for row in result]
            except _Unwritable:
                continue
            columns = ", ".join(f"sa.column({key!r})" for key in keys)
            found.lines.append(f"op.bulk_insert(\n    sa.table({table.name!r}, {columns}),")
            found.lines.append("    [")
            found.lines += [f"        {row}," for row in rows]
            found.lines.append("    ],\n)")
        if connection.dialect.name == "postgresql":
            for name, value in sequence_positions(connection).items():
                if value is not None:
                    call = f"SELECT setval('{quote(name)}', {value}, true)"
                    found.lines.append(f"op.execute({call!r})")
    return found


def sequence_positions(connection: sa.Connection) -> dict[str, int | None]:
    """PostgreSQL: each sequence's last value handed out (``None``: none yet)."""
    positions: dict[str, int | None] = {}
    quote = connection.dialect.identifier_preparer.quote
    for name in sorted(sa.inspect(connection).get_sequence_names()):
        row = connection.execute(sa.text(f"SELECT last_value, is_called FROM {quote(name)}"))
        last, called = row.one()
        positions[name] = int(last) if called else None
    return positions


def _row(keys: list[str], row: Any, imports: set[str]) -> str:
    items = ", ".join(
        f"{key!r}: {_literal(value, imports)}" for key, value in zip(keys, row, strict=True)
    )
    return "{" + items + "}"


def _literal(value: object, imports: set[str]) -> str:
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return repr(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, memoryview):
        return repr(bytes(value))
    if isinstance(value, decimal.Decimal) and value.is_finite():
        imports.add("decimal")
        return f"decimal.Decimal({str(value)!r})"
    if isinstance(value, uuid.UUID):
        imports.add("uuid")
        return f"uuid.UUID({str(value)!r})"
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        tz = getattr(value, "tzinfo", None)
        if tz is not None and tz is not datetime.timezone.utc:
            raise _Unwritable
        imports.add("datetime")
        return repr(value)
    raise _Unwritable
