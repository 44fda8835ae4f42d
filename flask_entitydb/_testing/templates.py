"""A test schema built once and reused by later sessions while the migrations are the same.

Running the whole history for every worker of every session costs seconds with hundreds of
revisions. So the first worker that builds a schema with the migrations also keeps a copy
of it on the server, a *template database* named after a fingerprint of what it was built
from (:func:`fingerprint`: the files of the migrations folder and the entities' tables),
``<name>_tpl_<fingerprint>``; a later worker with the same fingerprint copies it instead of
migrating (as Rails keys its schema by a hash, and pytest-django's ``--reuse-db``):

- PostgreSQL: ``CREATE DATABASE <worker> TEMPLATE <template>``, a file copy by the server;
- MySQL/MariaDB: each table from ``SHOW CREATE TABLE`` (foreign keys included, which
  ``CREATE TABLE ... LIKE`` would lose) and its rows, the version table's included.

A changed revision file (or entity, or ``env.py``) changes the fingerprint, so the schema is
built again; ``--entitydb-rebuild`` forces that. Templates of other fingerprints of the same
``<name>`` are dropped when a new one is kept. ``check_migrations`` still runs the real
history. Only databases the plugin makes (per xdist worker, and the binds' own) are filled
from a template: a database you name is never dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from flask_entitydb._testing.workers import (
    admin_engine,
    create_worker_database,
    drop_database,
    quote,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

    from flask_entitydb.state import EntityDBState

_MARK_TABLE = "_entitydb_template"
_MAX_NAME = 63
_LOCK_WAIT = 600


def fingerprint(state: EntityDBState, folder: str, tables: list[sa.Table]) -> str:
    """A hash of every file of the migrations ``folder`` (revisions, ``env.py``,
    ``alembic.ini``) and of the entities' ``tables``.

    A file's own hash is taken from a small cache in the temporary folder while its size
    and modification time are those recorded (:func:`_file_hashes`), so a warm start-up
    with hundreds of revisions reads none of them."""
    digest = hashlib.sha256()
    paths = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        paths += [os.path.join(root, n) for n in sorted(files) if not n.endswith((".pyc", ".pyo"))]
    hashes = _file_hashes(folder, paths)
    for path in paths:
        digest.update(os.path.relpath(path, folder).encode())
        digest.update(bytes.fromhex(hashes[path]))
    for table in sorted(tables, key=lambda t: t.fullname):
        digest.update(repr(table).encode())
    digest.update(state.db.engine.dialect.name.encode())
    return digest.hexdigest()[:12]


_RACY_NS = 2_000_000_000
"""A file changed less than this before its hash was cached may change again within the
same modification time: its cached hash is not trusted."""


def _file_hashes(folder: str, paths: list[str]) -> dict[str, str]:
    """Path -> sha256 of its bytes, from the cache of ``folder`` where the file's size and
    modification time match (and are older than the cache by :data:`_RACY_NS`), else read;
    the cache is written again when a file was read."""
    key = hashlib.sha256(os.path.realpath(folder).encode()).hexdigest()[:16]
    cache_path = os.path.join(tempfile.gettempdir(), f"flask-entitydb-{key}.file-hashes.json")
    try:
        with open(cache_path, encoding="utf-8") as file:
            cached = json.load(file)
        written, entries = int(cached["written"]), dict(cached["files"])
    except (OSError, ValueError, KeyError, TypeError):
        written, entries = 0, {}
    hashes: dict[str, str] = {}
    fresh: dict[str, list[object]] = {}
    read = False
    for path in paths:
        stat = os.stat(path)
        entry = entries.get(path)
        if (
            isinstance(entry, list)
            and entry[:2] == [stat.st_size, stat.st_mtime_ns]
            and stat.st_mtime_ns < written - _RACY_NS
        ):
            hashes[path] = str(entry[2])
        else:
            with open(path, "rb") as file:
                hashes[path] = hashlib.sha256(file.read()).hexdigest()
            read = True
        fresh[path] = [stat.st_size, stat.st_mtime_ns, hashes[path]]
    if read or set(entries) != set(fresh):
        with suppress(OSError):
            temporary = f"{cache_path}.{os.getpid()}"
            with open(temporary, "w", encoding="utf-8") as file:
                json.dump({"written": time.time_ns(), "files": fresh}, file)
            os.replace(temporary, cache_path)
    return hashes


def template_name(base: str, print_: str) -> str:
    """``<base>_tpl_<fingerprint>``, ``base`` shortened to fit the servers' limit."""
    suffix = f"_tpl_{print_}"
    return base[: _MAX_NAME - len(suffix)] + suffix


@contextmanager
def _locked(conn: sa.Connection, name: str) -> Iterator[None]:
    """Hold a server lock named after the template: one worker builds, the others wait."""
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        return
    got = conn.execute(sa.text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": _LOCK_WAIT})
    if got.scalar() != 1:
        raise RuntimeError(f"could not take the lock '{name}'")
    try:
        yield
    finally:
        conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})


def _databases(conn: sa.Connection) -> set[str]:
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        sql = "SELECT datname FROM pg_database"
    else:
        sql = "SELECT schema_name FROM information_schema.schemata"
    return {str(name) for name in conn.scalars(sa.text(sql))}


def _template_run(conn: sa.Connection, template: str) -> str | None:
    """The run that built ``template`` (kept with it, last), or ``None`` when there is no
    complete template of that name."""
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        sql = "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"
        return conn.execute(sa.text(sql), {"n": template}).scalar()
    table = f"{quote(conn, template)}.{quote(conn, _MARK_TABLE)}"
    try:
        return conn.execute(sa.text(f"SELECT run FROM {table}")).scalar()
    except sa.exc.DBAPIError:
        return None


def _mark(conn: sa.Connection, template: str, run: str) -> None:
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"COMMENT ON DATABASE {quote(conn, template)} IS '{run}'"))
        return
    table = f"{quote(conn, template)}.{quote(conn, _MARK_TABLE)}"
    conn.execute(sa.text(f"CREATE TABLE {table} (run VARCHAR(64))"))
    conn.execute(sa.text(f"INSERT INTO {table} (run) VALUES (:run)"), {"run": run})


def _copy(conn: sa.Connection, source: str, target: str) -> None:
    """Fill the database ``target`` with the schema and rows of ``source``."""
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        drop_database(conn, target)
        conn.execute(
            sa.text(f"CREATE DATABASE {quote(conn, target)} TEMPLATE {quote(conn, source)}")
        )
        return
    tables = [
        str(name)
        for name in conn.scalars(
            sa.text(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s"
                " AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME <> :mark"
            ),
            {"s": source, "mark": _MARK_TABLE},
        )
    ]
    conn.execute(sa.text(f"USE {quote(conn, target)}"))  # foreign keys name their tables bare
    conn.execute(sa.text("SET SESSION FOREIGN_KEY_CHECKS = 0"))
    for table in tables:
        ddl = conn.execute(
            sa.text(f"SHOW CREATE TABLE {quote(conn, source)}.{quote(conn, table)}")
        ).one()[1]
        conn.execution_options(no_parameters=True).exec_driver_sql(ddl)
        conn.execute(
            sa.text(
                f"INSERT INTO {quote(conn, target)}.{quote(conn, table)}"
                f" SELECT * FROM {quote(conn, source)}.{quote(conn, table)}"
            )
        )


def copyable(conn: sa.Connection, database: str) -> bool:
    """Whether :func:`_copy` copies all of ``database``: on MySQL/MariaDB, no views,
    triggers, routines or events (PostgreSQL copies everything)."""
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        return True
    checks = (
        "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = :d"
        " AND TABLE_TYPE <> 'BASE TABLE'",
        "SELECT count(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = :d",
        "SELECT count(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = :d",
        "SELECT count(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = :d",
    )
    return all(not conn.execute(sa.text(sql), {"d": database}).scalar() for sql in checks)


def latest_template(conn: sa.Connection, base: str) -> str | None:
    """The newest complete template of ``base`` on a PostgreSQL server (a worker database
    made from it at the start of the session is at head already when the fingerprint
    still matches, which saves dropping and creating it again); ``None`` elsewhere."""
    import sqlalchemy as sa

    if conn.dialect.name != "postgresql":
        return None
    prefix = template_name(base, "")
    rows = conn.execute(
        sa.text(
            "SELECT datname FROM pg_database WHERE starts_with(datname, :prefix)"
            " AND length(datname) = :length"
            " AND shobj_description(oid, 'pg_database') IS NOT NULL ORDER BY oid DESC"
        ),
        {"prefix": prefix, "length": len(prefix) + 12},
    )
    return next((str(name) for name in rows.scalars()), None)


def build_or_copy(
    url: sa.URL,
    admin_url: sa.URL,
    base: str,
    print_: str,
    run: str,
    *,
    rebuild: bool,
    build: Callable[[], None],
    release: Callable[[], None],
    created_from: str | None = None,
) -> bool:
    """Fill the database of ``url`` from the template of ``print_``, or ``build()`` it
    and keep a template; ``True`` when it was copied.

    :param release: closes every connection to the database of ``url`` (a server copies
        a database nobody is connected to).
    :param rebuild: build again unless this ``run`` built the template.
    :param created_from: the template the database was made from, if any.
    """
    target = url.database or ""
    template = template_name(base, print_)
    if created_from == template and not rebuild:
        return True  # made from this very template: at head already
    engine = admin_engine(admin_url)
    try:
        with engine.connect() as conn:
            if created_from is not None:  # a copy of other migrations: start empty
                release()
                drop_database(conn, target)
                create_worker_database(conn, target)
            if not rebuild and _template_run(conn, template) is not None:
                # complete (marked last): copy it without waiting for the lock
                release()
                _copy(conn, template, target)
                return True
            with _locked(conn, template):
                if template in _databases(conn):
                    if not rebuild or _template_run(conn, template) == run:
                        release()
                        _copy(conn, template, target)
                        return True
                    drop_database(conn, template)
                build()
                release()
                if copyable(conn, target):
                    _keep(conn, base, template, target, run)
                return False
    finally:
        engine.dispose()


def _keep(conn: sa.Connection, base: str, template: str, source: str, run: str) -> None:
    """Keep a copy of ``source`` as ``template``; drop the templates of ``base`` made
    from other fingerprints (one still in use is left)."""
    import sqlalchemy as sa

    prefix = template_name(base, "")
    for name in _databases(conn):
        if name.startswith(prefix) and name != template and len(name) == len(template):
            with suppress(sa.exc.DBAPIError):
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quote(conn, name)}"))
    try:
        if conn.dialect.name != "postgresql":
            conn.execute(sa.text(f"CREATE DATABASE {quote(conn, template)}"))
        _copy(conn, source, template)
        _mark(conn, template, run)
    except sa.exc.DBAPIError:
        # not kept this time (a connection to the source, for example): the next run builds
        drop_database(conn, template)
