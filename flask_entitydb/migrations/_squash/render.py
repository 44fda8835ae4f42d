"""The squashed revision's text: the schema the history built on a scratch database,
reflected and rendered as Alembic operations (``op.create_table`` in dependency order,
then ``op.create_index``), as Atlas's checkpoint writes the schema a dev database has,
then the rows the history inserted (:mod:`.rows`)."""

from __future__ import annotations

import datetime
import re
import textwrap
from collections.abc import Sequence

import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext

from flask_entitydb.migrations._squash.rows import Seed
from flask_entitydb.migrations._squash.snapshot import is_version_table

_DIALECT_MODULE = re.compile(r"\b(mysql|postgresql|sqlite|mssql|oracle)\.[A-Z]")

TEMPLATE = '''"""{message}

The revisions up to and including '{revision}' as one, for new databases: on a
database with no revision yet, 'flask db upgrade' runs this file instead of them and
goes on from '{revision}'. A database already at one of them upgrades through them, as
before. Written by 'flask db squash' on {dialect}, after the schema it makes was
compared with the one the {count} revision(s) make and found equal.

Revision ID: {revision}
Replaces: {replaces}
Create Date: {date}
"""

import sqlalchemy as sa
from alembic import op
{imports}
revision = {revision!r}
down_revision = None
branch_labels = None
depends_on = None

replaces = {replaces_tuple}
"""The revisions this one stands for, oldest first."""
replaced_sha256 = {fingerprint!r}
"""The hash of their files when squashed: 'flask db upgrade' refuses this file once they change."""
squashed_on = {dialect!r}
"""The backend it was proved on: databases of other backends upgrade through the revisions."""


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


def reflected(engine: sa.Engine) -> sa.MetaData:
    """The tables of the database of ``engine`` (version tables left out), as the
    squashed revision will create them."""
    metadata = sa.MetaData()
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        names = [t for t in inspector.get_table_names() if not is_version_table(inspector, t)]
        metadata.reflect(bind=connection, only=names)
    if engine.dialect.name == "postgresql":
        _serial_columns(metadata)
    return metadata


def _serial_columns(metadata: sa.MetaData) -> None:
    """A PostgreSQL ``SERIAL`` column reflects with ``DEFAULT nextval(...)`` of its own
    sequence: leave the default out, so ``CREATE TABLE`` makes the column ``SERIAL`` again
    (and with it the same sequence)."""
    for table in metadata.tables.values():
        for column in table.columns:
            default = column.server_default
            text = str(getattr(default, "arg", "")) if default is not None else ""
            if text.startswith("nextval(") and f"'{table.name}_{column.name}_seq'" in text:
                column.server_default = None
                column.autoincrement = True


def source(
    metadata: sa.MetaData,
    dialect: sa.Dialect,
    rows: Seed,
    *,
    revision: str,
    replaces: Sequence[str],
    fingerprint: str,
    message: str,
    backend: str,
) -> str:
    """The text of the squashed revision creating ``metadata``'s tables, and inserting
    ``rows``."""
    tables = metadata.sorted_tables
    up: list[ops.MigrateOperation] = []
    for table in tables:
        up.append(ops.CreateTableOp.from_table(table))
        implicit = _implicit_indexes(table, dialect)
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if index.name not in implicit:
                up.append(ops.CreateIndexOp.from_index(index))
    down: list[ops.MigrateOperation] = [ops.DropTableOp.from_table(t) for t in reversed(tables)]
    context = MigrationContext.configure(dialect=dialect)
    upgrade = render_python_code(ops.UpgradeOps(ops=up), migration_context=context)
    downgrade = render_python_code(ops.DowngradeOps(ops=down), migration_context=context)
    if rows.lines:
        upgrade = upgrade.rstrip("\n") + "\n" + textwrap.indent("\n".join(rows.lines), "    ")
    modules = sorted(set(_DIALECT_MODULE.findall(upgrade + downgrade)))
    imports = "".join(f"import {name}\n" for name in sorted(rows.imports))
    imports += "".join(f"from sqlalchemy.dialects import {name}\n" for name in modules)
    return TEMPLATE.format(
        message=message,
        revision=revision,
        dialect=backend,
        count=len(replaces),
        replaces=", ".join(replaces),
        replaces_tuple=repr(tuple(replaces)),
        fingerprint=fingerprint,
        date=datetime.datetime.now().replace(microsecond=0).isoformat(sep=" "),
        imports=imports,
        upgrade=_body(upgrade),
        downgrade=_body(downgrade),
    )


def _implicit_indexes(table: sa.Table, dialect: sa.Dialect) -> set[str | None]:
    """On MySQL/MariaDB, the index a foreign key makes for itself (same name, same
    columns): creating it again would fail."""
    if dialect.name not in ("mysql", "mariadb"):
        return set()
    keys = {(fk.name, tuple(c.name for c in fk.columns)) for fk in table.foreign_key_constraints}
    return {
        index.name
        for index in table.indexes
        if (index.name, tuple(c.name for c in index.columns)) in keys and not index.unique
    }


def _body(code: str) -> str:
    """Alembic's rendered code (its comment lines dropped) as a function body."""
    lines = [line for line in code.splitlines() if not line.strip().startswith("# ###")]
    text = "\n".join(lines).strip("\n")
    return text if text.strip() else "    pass"
