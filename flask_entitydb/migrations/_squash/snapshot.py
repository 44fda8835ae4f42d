"""What the equality proof of ``flask db squash`` compares: everything reflection sees of
a database (tables, their columns, keys, indexes, constraints and comments, views,
sequences) and the rows the revisions left in its tables."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from flask_entitydb.migrations._journal.table import is_journal_table
from flask_entitydb.migrations._squash.rows import sequence_positions

Facts = dict[str, Any]
"""One database: ``"<kind> '<name>'"`` -> what it is (comparable, printable values)."""

MAX_ROWS = 10_000
"""Rows of a table compared one by one; past this only their number is compared."""


def is_version_table(inspector: sa.Inspector, table: str) -> bool:
    """Whether ``table`` is an Alembic version table (one ``version_num`` column) or the
    migration journal: the bookkeeping of migration runs, not the revisions' schema."""
    columns = [c["name"] for c in inspector.get_columns(table)]
    return columns == ["version_num"] or is_journal_table(columns)


def snapshot(engine: sa.Engine) -> Facts:
    """The facts of the database of ``engine``; Alembic version tables (and the migration
    journal) left out."""
    facts: Facts = {}
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        dialect = connection.dialect
        for table in sorted(inspector.get_table_names()):
            if is_version_table(inspector, table):
                continue
            facts.update(_table_facts(inspector, dialect, table))
            facts[f"rows of table '{table}'"] = _rows(connection, table)
        for view in sorted(inspector.get_view_names()):
            definition = inspector.get_view_definition(view)
            facts[f"view '{view}'"] = " ".join(str(definition).split())
        if dialect.name == "postgresql":
            for sequence, last in sequence_positions(connection).items():
                facts[f"sequence '{sequence}'"] = f"last value {last}"
            for enum in inspector.get_enums():  # type: ignore[attr-defined]
                facts[f"enum type '{enum['name']}'"] = ", ".join(enum["labels"])
    return facts


def _table_facts(
    inspector: sa.Inspector, dialect: sa.Dialect, table: str
) -> Iterator[tuple[str, Any]]:
    where = f"table '{table}'"
    yield where, "present"
    names = []
    for column in inspector.get_columns(table):
        names.append(column["name"])
        yield f"{where} column '{column['name']}'", _column(column, dialect)
    yield f"{where} column order", ", ".join(names)
    key = inspector.get_pk_constraint(table)
    yield f"{where} primary key", _named(key.get("name"), key.get("constrained_columns"))
    for fk in inspector.get_foreign_keys(table):
        referred = f"{fk['referred_table']}({', '.join(fk['referred_columns'])})"
        options = ", ".join(f"{k}={v}" for k, v in sorted((fk.get("options") or {}).items()))
        text = f"({', '.join(fk['constrained_columns'])}) -> {referred} {options}".strip()
        yield f"{where} foreign key '{fk.get('name')}'", text
    for index in inspector.get_indexes(table):
        unique = "unique " if index.get("unique") else ""
        columns = [str(c) for c in index.get("column_names") or ()]
        expressions = [str(e) for e in index.get("expressions") or ()]
        yield (
            f"{where} index '{index.get('name')}'",
            f"{unique}({', '.join(expressions or columns)})",
        )
    for constraint in inspector.get_unique_constraints(table):
        listed = ", ".join(constraint["column_names"])
        yield f"{where} unique '{constraint.get('name')}'", f"({listed})"
    try:
        checks = inspector.get_check_constraints(table)
    except NotImplementedError:  # pragma: no cover - every supported dialect has them
        checks = []
    for check in checks:
        yield f"{where} check '{check.get('name')}'", " ".join(str(check["sqltext"]).split())
    try:
        comment = inspector.get_table_comment(table).get("text")
    except NotImplementedError:  # SQLite keeps no comments
        comment = None
    if comment:
        yield f"{where} comment", comment


def _column(column: Any, dialect: sa.Dialect) -> str:
    parts = [str(column["type"].compile(dialect=dialect))]
    parts.append("NULL" if column.get("nullable", True) else "NOT NULL")
    default = column.get("default")
    if default is not None:
        parts.append(f"DEFAULT {default}")
    if column.get("computed"):
        parts.append(f"GENERATED {column['computed'].get('sqltext')}")
    if column.get("identity"):
        parts.append("IDENTITY")
    if column.get("comment"):
        parts.append(f"COMMENT {column['comment']!r}")
    return " ".join(parts)


def _named(name: object, columns: object) -> str:
    listed = ", ".join(str(c) for c in columns or ()) if isinstance(columns, list) else ""
    return f"{name or '(unnamed)'} ({listed})" if listed else "none"


def _rows(connection: sa.Connection, table: str) -> str:
    """The table's rows, sorted, as one comparable text (their number past MAX_ROWS)."""
    quoted = connection.dialect.identifier_preparer.quote(table)
    count = connection.scalar(sa.text(f"SELECT COUNT(*) FROM {quoted}"))
    if not count:
        return "none"
    if count > MAX_ROWS:
        return f"{count} rows"
    result = connection.execute(sa.text(f"SELECT * FROM {quoted}"))
    rows = sorted(repr(tuple(row)) for row in result)
    if len(rows) <= 3:
        return f"{count} row(s): {'; '.join(rows)}"
    digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:12]
    return f"{count} row(s): {'; '.join(rows[:3])}; ... (sha256 {digest})"


def differences(history: Facts, squashed: Facts) -> list[str]:
    """What differs, one line each: what the history made, what the squashed revision did."""
    found = []
    for key in sorted(set(history) | set(squashed)):
        before, after = history.get(key), squashed.get(key)
        if before == after:
            continue
        if after is None:
            found.append(f"{key}: missing after the squashed revision (history: {before})")
        elif before is None:
            found.append(f"{key}: only after the squashed revision ({after})")
        else:
            found.append(f"{key}: history: {before}; squashed revision: {after}")
    return found
