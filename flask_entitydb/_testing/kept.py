"""Worker databases kept between runs and used as they are while nothing changed.

A template (:mod:`~flask_entitydb._testing.templates`) saves the migrations, but copying it
still costs seconds per worker (PostgreSQL's ``DROP DATABASE`` alone forces a checkpoint).
So, as pytest-django's ``--reuse-db`` does, the database of each xdist worker outlives the
run under a fixed name, ``<name>_kept_<worker>`` (``shop_test_kept_gw0``), and the next run
of the same worker uses it as it is when its *marker* says it holds the schema of the same
fingerprint and nothing but that:

- the marker is the comment of the database (PostgreSQL) or of one of its tables, the
  version table (MySQL/MariaDB, which have no database comments):
  ``flask-entitydb kept <fingerprint> <rows>``, ``<rows>`` a hash of each table's row
  count as the schema was built;
- a run that takes a kept database removes the marker first (:func:`claim`) and writes it
  back only at a clean end of the session (:func:`release`), after putting the counters
  back and finding every table with the row count it had when built. A run that was killed,
  or wrote rows outside the tests' transactions, leaves no marker: the next run fills the
  database afresh (from the template, or with the migrations);
- a kept database is used by one run at a time: the run holds a server lock named after it
  (``pg_try_advisory_lock`` / ``GET_LOCK``) on a connection of its own for the whole
  session; a second run at the same time gets a database of its own, made and dropped as
  before (:func:`~flask_entitydb._testing.workers.worker_database_name`).

A changed revision file or entity changes the fingerprint, ``--entitydb-rebuild`` forces a
new build; ``--entitydb-schema=create_all`` keeps nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask_entitydb._testing.workers import admin_engine, quote

if TYPE_CHECKING:
    import sqlalchemy as sa

    from flask_entitydb._testing.counters import Counters

_MARK = "flask-entitydb kept"
_MAX_NAME = 63


def kept_database_name(base: str, worker: str) -> str:
    """``<base>_kept_<worker>``, ``base`` shortened to fit the servers' limit."""
    suffix = f"_kept_{worker}"
    return base[: _MAX_NAME - len(suffix)] + suffix


@dataclass
class Kept:
    """A kept worker database taken by this run (its lock held until :func:`release`)."""

    name: str
    engine: sa.Engine
    lock: sa.Connection
    """The connection holding the server lock (to the database given by the user)."""
    existed: bool
    """Whether the database was there before this run (else this run created it)."""
    print_: str | None = None
    """The fingerprint of the schema in it: from the marker found at the start, then the
    one this session built; ``None``: not known to be clean."""
    rows: str | None = None
    """The hash of the tables' row counts as the schema was built."""
    how: str = "not used"
    """What this session did with it, for the end-of-run line: reused, copied, built."""
    notes: list[str] = field(default_factory=list)


def _lock_key(name: str) -> str:
    return "entitydb_kept_" + hashlib.sha256(name.encode()).hexdigest()[:32]


def claim(engine: sa.Engine, lock: sa.Connection, name: str) -> Kept | None:
    """Take the kept database ``name`` for this run on ``lock``, a connection of the
    plugin's ``engine`` (:func:`~flask_entitydb._testing.workers.admin_engine`): hold its
    lock, read and remove its marker. ``None`` when another run holds it (``lock`` is then
    closed and ``engine`` disposed, as they are when this fails)."""
    import sqlalchemy as sa

    try:
        key = _lock_key(name)
        postgresql = lock.dialect.name == "postgresql"
        if postgresql:
            number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
            got = lock.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": number})
        else:
            got = lock.scalar(sa.text("SELECT GET_LOCK(:k, 0)"), {"k": key}) == 1
        if not got:
            lock.close()
            engine.dispose()
            return None
        kept = Kept(name, engine, lock, existed=False)
        if postgresql:
            row = lock.execute(
                sa.text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                    " WHERE datname = :n"
                ),
                {"n": name},
            ).first()
            kept.existed = row is not None
            marker = None if row is None else row[0]
            if marker:
                lock.execute(sa.text(f"COMMENT ON DATABASE {quote(lock, name)} IS NULL"))
        else:
            kept.existed = bool(
                lock.scalar(
                    sa.text(
                        "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"
                    ),
                    {"n": name},
                )
            )
            row = lock.execute(
                sa.text(
                    "SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES"
                    " WHERE TABLE_SCHEMA = :n AND TABLE_COMMENT LIKE :mark"
                ),
                {"n": name, "mark": _MARK + " %"},
            ).first()
            marker = None if row is None else str(row[1])
            if row is not None:
                table = f"{quote(lock, name)}.{quote(lock, str(row[0]))}"
                lock.execute(sa.text(f"ALTER TABLE {table} COMMENT = ''"))
        parts = (marker or "").removeprefix(_MARK + " ").split()
        if marker and len(parts) == 2:
            kept.print_, kept.rows = parts
        return kept
    except BaseException:
        lock.close()
        engine.dispose()
        raise


def row_counts(conn: sa.Connection) -> str:
    """A hash of every table's row count in the database of ``conn`` (one query)."""
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        sql = (
            "SELECT table_schema, table_name FROM information_schema.tables WHERE"
            " table_type = 'BASE TABLE' AND table_schema = ANY (current_schemas(false))"
        )
    else:
        sql = (
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE"
            " TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA = DATABASE()"
        )
    tables = sorted((str(s), str(t)) for s, t in conn.execute(sa.text(sql)))
    digest = hashlib.sha256()
    if tables:
        counts = " UNION ALL ".join(
            f"SELECT {n}, count(*) FROM {quote(conn, s)}.{quote(conn, t)}"
            for n, (s, t) in enumerate(tables)
        )
        found = {int(n): int(c) for n, c in conn.execute(sa.text(counts))}
        for n, (schema, table) in enumerate(tables):
            digest.update(f"{schema}.{table}={found[n]};".encode())
    conn.commit()
    return digest.hexdigest()[:12]


def built(kept: Kept, conn: sa.Connection, print_: str, how: str) -> None:
    """Record that this session filled the kept database with the schema ``print_``
    (``conn``: a connection to it, before any test)."""
    kept.print_ = print_
    kept.rows = row_counts(conn)
    kept.how = how


def release(kept: Kept, url: sa.URL, counters: Counters | None) -> None:
    """End of the session: put the counters back, write the marker again when every
    table has the row count it had when built, and let the lock go."""
    import sqlalchemy as sa

    from flask_entitydb._testing.counters import restore

    try:
        if kept.print_ is None or kept.rows is None:
            return
        engine = admin_engine(url)
        try:
            with engine.connect() as conn:
                if counters:
                    restore(conn, counters)
                clean = row_counts(conn) == kept.rows
                table = None
                if clean and conn.dialect.name != "postgresql":
                    table = _version_table(conn)
        finally:
            engine.dispose()
        if not clean:
            kept.notes.append(
                f"'{kept.name}' was written to outside the tests' transactions (its tables"
                " do not have the rows they had when built): the next run fills it afresh"
            )
            return
        marker = f"{_MARK} {kept.print_} {kept.rows}"
        lock = kept.lock
        if lock.dialect.name == "postgresql":
            lock.execute(sa.text(f"COMMENT ON DATABASE {quote(lock, kept.name)} IS '{marker}'"))
        elif table is not None:
            target = f"{quote(lock, kept.name)}.{quote(lock, table)}"
            lock.execute(sa.text(f"ALTER TABLE {target} COMMENT = '{marker}'"))
    finally:
        kept.lock.close()  # the server lets the lock go with the connection
        kept.engine.dispose()


def _version_table(conn: sa.Connection) -> str | None:
    """The table to carry the marker on MySQL/MariaDB: the version table (its one column is
    ``version_num``)."""
    import sqlalchemy as sa

    names = conn.scalars(
        sa.text(
            "SELECT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
            " GROUP BY TABLE_NAME HAVING count(*) = 1 AND max(COLUMN_NAME) = 'version_num'"
            " ORDER BY TABLE_NAME"
        )
    ).all()
    return str(names[0]) if names else None
