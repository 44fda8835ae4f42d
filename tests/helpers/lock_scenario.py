"""The exactly-once scenario of the migration lock tests: a ``runlog`` table written by a
revision that sleeps on the server, then adds a column.

A revision applied twice leaves two ``runlog`` rows (or fails with a duplicate column);
applied once, one row. Used by tests/test_locking.py, the reliability tests of the lock
and the cluster tests (Galera, PgBouncer).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from helpers.migration_apps import FLASK, INIT, USER_ENTITY, AppPackage, ok

RUNLOG = """
op.create_table(
    "runlog",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("who", sa.String(80), nullable=False),
)
"""

SLOW = """
import os
bind = op.get_bind()
op.execute(sa.text("INSERT INTO runlog (who) VALUES (:who)").bindparams(who=str(os.getpid())))
if bind.dialect.name in ("mysql", "mariadb"):
    op.execute("SELECT SLEEP({seconds})")
elif bind.dialect.name == "postgresql":
    op.execute("SELECT pg_sleep({seconds})")
else:
    time.sleep({seconds})
op.add_column("runlog", sa.Column("extra", sa.Integer, nullable=True))
"""

API_UPGRADE = (
    "import sys; from alembic import command; from alembic.config import Config;"
    " command.upgrade(Config(sys.argv[1]), 'head')"
)
"""Alembic's own Python API, as a deploy script calls it (no flask-entitydb API)."""


def write_slow_revisions(package: AppPackage, seconds: float, *, third: bool = False) -> None:
    """``r1`` creates ``runlog``; ``r2`` logs its run, sleeps ``seconds`` on the server,
    adds a column; with ``third``, ``r3`` does the same again (a second column).

    The app also reads ``TESTAPP_*`` environment variables into its config (Flask's
    ``from_prefixed_env``), for subprocesses with their own settings."""
    package.write(
        "__init__.py",
        INIT.replace(
            "    app.config.update(config)",
            '    app.config.from_prefixed_env("TESTAPP")\n    app.config.update(config)',
        ),
    )
    package.write_entity("user", USER_ENTITY)  # no "no entities" warning
    ok(package.cli("init"))
    package.write_revision("r1", None, RUNLOG)
    package.write_revision("r2", "r1", SLOW.format(seconds=seconds))
    if third:
        package.write_revision(
            "r3", "r2", SLOW.format(seconds=seconds).replace('"extra"', '"extra3"')
        )


def runlog(url: str) -> list[str]:
    """The ``runlog`` rows (who ran the slow revision), in order."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(sa.text("SELECT who FROM runlog"))]
    finally:
        engine.dispose()


def columns(url: str, table: str = "runlog") -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        return {column["name"] for column in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def popen_api_upgrade(package: AppPackage, url: str | None = None) -> subprocess.Popen[str]:
    """``alembic.command.upgrade(Config('.../alembic.ini'), 'head')`` in a subprocess."""
    env = package.env()
    if url is not None:
        env["DB_CONNECTION_STRING"] = url
    return subprocess.Popen(
        [sys.executable, "-c", API_UPGRADE, str(package.migrations / "alembic.ini")],
        env=env,
        cwd=package.src,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def popen_upgrade(
    package: AppPackage, url: str | None = None, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``flask db upgrade`` in a subprocess, optionally against another URL."""
    env = package.env()
    if url is not None:
        env["DB_CONNECTION_STRING"] = url
    env.update(extra_env or {})
    return subprocess.Popen(
        [FLASK, "db", "upgrade", *args],
        env=env,
        cwd=package.src,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sleeping(url: str) -> bool:
    """Whether the slow revision runs in the database of ``url`` now (its ``runlog`` row
    is not committed yet, so ask the server what runs)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                sql = (
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND query LIKE 'SELECT pg_sleep%%'"
                )
            else:
                sql = (
                    "SELECT count(*) FROM information_schema.PROCESSLIST"
                    " WHERE DB = DATABASE() AND INFO LIKE 'SELECT SLEEP%%'"
                )
            return bool(connection.exec_driver_sql(sql).scalar())
    finally:
        engine.dispose()


def _lock_holder(connection: sa.Connection) -> int | None:
    """The server id of the session holding the migration lock of the database
    ``connection`` is in (the one this test created): ``IS_USED_LOCK`` of its
    ``GET_LOCK`` name, or the backend holding its advisory lock in this database."""
    from flask_entitydb.migrations._locks.locking import lock_name, postgresql_lock_key

    name = lock_name(connection)
    if connection.dialect.name != "postgresql":
        holder = connection.execute(sa.text("SELECT IS_USED_LOCK(:name)"), {"name": name})
        found = holder.scalar()
        return None if found is None else int(found)
    key = postgresql_lock_key(name)
    pid = connection.execute(
        sa.text(
            "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.objsubid = 1 AND l.classid = CAST(:high AS oid)"
            " AND l.objid = CAST(:low AS oid)"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
    ).scalar()
    return None if pid is None else int(pid)


def popen_upgrade_logging_errors(package: AppPackage, errors: Path) -> subprocess.Popen[str]:
    """``flask db upgrade`` in a subprocess whose stderr goes to the file ``errors``, so a
    test can see its lock notice ("Waiting up to ...") while it runs."""
    with errors.open("w") as stderr:
        return subprocess.Popen(
            [FLASK, "db", "upgrade"],
            env=package.env(),
            cwd=package.src,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )


def kill_lock_holder(url: str) -> None:
    """End the session holding the migration lock of the database of ``url`` (a database
    the test made, so the session is the test's own), found by its server id: ``KILL`` of
    the connection that holds its ``GET_LOCK``, ``pg_terminate_backend`` of the backend
    that holds its advisory lock in that database. Nothing else on the server is touched."""
    engine = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            holder = _lock_holder(connection)
            assert holder is not None, "nobody holds the migration lock"
            if engine.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": holder})
            else:
                connection.exec_driver_sql(f"KILL {holder}")
    finally:
        engine.dispose()


NOTICES = ("Waiting up to ", "Database: ")
"""How the lines start that a run prints on stderr that are not errors: its lock notice,
the database it works on."""


def error_lines(stderr: str) -> list[str]:
    """The lines of a run's stderr other than its notices (:data:`NOTICES`)."""
    return [line for line in stderr.splitlines() if not line.startswith(NOTICES)]


def finish(process: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str, str]:
    """Wait for ``process``; its exit status, stdout and stderr."""
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def finish_all(processes: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    """Wait for every process in ``processes``; each must have succeeded."""
    results = [finish(process) for process in processes]
    assert [code for code, _, _ in results] == [0] * len(processes), results
    return results


def lock_lines(results: list[tuple[int, str, str]]) -> list[str]:
    """The ``Migration lock:`` lines of the outputs of ``flask db upgrade -v`` runs."""
    return [line for _, out, _ in results for line in out.splitlines() if "Migration lock:" in line]


def wait_until(predicate: object, timeout: float = 60, what: str = "condition") -> float:
    """Poll ``predicate()`` until true; the seconds it took."""
    start = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start
