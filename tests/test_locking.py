"""The database-level migration lock, on real SQLite, MariaDB and PostgreSQL databases."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers.lock_scenario import (
    columns,
    finish,
    popen_api_upgrade,
    popen_upgrade,
    runlog,
    write_slow_revisions,
)
from helpers.migration_apps import AppPackage, without_database_line

from flask_entitydb.errors import LockTimeoutError
from flask_entitydb.migrations._locks.locking import lock_name, migration_lock


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    yield engine
    engine.dispose()


def expected_message(name: str, timeout: str) -> str:
    return (
        f"Could not take the migration lock '{name}' within {timeout} seconds; another"
        " 'flask db upgrade' is probably running: retry, or raise --lock-timeout."
    )


def test_second_holder_times_out_with_clear_error(engine: sa.Engine) -> None:
    with engine.connect() as first, engine.connect() as second:
        name = lock_name(first)
        with migration_lock(first, timeout=1):
            for timeout, shown in [(0.2, "0.2"), (0, "0")]:
                with (
                    pytest.raises(LockTimeoutError) as info,
                    migration_lock(second, timeout=timeout),
                ):
                    pytest.fail("the second connection got the lock too")
                assert str(info.value) == expected_message(name, shown)
            # The failed attempt left the second connection clean and usable.
            assert not second.in_transaction()
            assert second.execute(sa.text("SELECT 1")).scalar() == 1


def test_lock_is_released_after_the_block_also_when_it_raises(engine: sa.Engine) -> None:
    with engine.connect() as first, engine.connect() as second:
        with migration_lock(first, timeout=1):
            pass
        with migration_lock(second, timeout=0):
            pass
        with pytest.raises(RuntimeError, match="boom"), migration_lock(first, timeout=1):
            raise RuntimeError("boom")
        with migration_lock(second, timeout=0):
            pass
        # ... and the first connection can take it again after the second released it.
        with migration_lock(first, timeout=0):
            pass


def test_released_when_block_fails_inside_a_database_transaction(engine: sa.Engine) -> None:
    with engine.connect() as first, engine.connect() as second:
        with pytest.raises(sa.exc.DBAPIError), migration_lock(first, timeout=1):
            first.execute(sa.text("SELECT * FROM no_such_table"))
        with migration_lock(second, timeout=0):
            pass
        assert first.execute(sa.text("SELECT 1")).scalar() == 1


def test_lock_connection_runs_ddl_in_its_own_transactions(engine: sa.Engine) -> None:
    """What Alembic does inside the lock: begin, DDL, commit, per revision, on the same
    connection, while other connections can still read the database."""
    with engine.connect() as conn, migration_lock(conn, timeout=1):
        assert not conn.in_transaction()
        for number in (1, 2):
            with conn.begin():
                conn.execute(sa.text(f"CREATE TABLE t{number} (id INTEGER PRIMARY KEY)"))
                conn.execute(sa.text(f"INSERT INTO t{number} (id) VALUES ({number})"))
            with engine.connect() as other:
                assert other.execute(sa.text(f"SELECT id FROM t{number}")).scalar() == number


def test_other_names_do_not_conflict(engine: sa.Engine) -> None:
    with (
        engine.connect() as first,
        engine.connect() as second,
        migration_lock(first, timeout=1, name="app_one"),
    ):
        with migration_lock(second, timeout=0, name="app_two"):
            pass
        with (
            pytest.raises(LockTimeoutError, match="'app_one'"),
            migration_lock(second, timeout=0, name="app_one"),
        ):
            pass


def test_default_name_is_deterministic_short_and_spelling_independent(
    database_url: str, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sa.make_url(database_url)
    if backend == "sqlite":
        assert url.database is not None
        monkeypatch.chdir(tmp_path)
        other_url = url.set(database=Path(url.database).name)  # relative spelling
    else:
        other_url = url.set(host="localhost")
    engines = [sa.create_engine(u, poolclass=sa.NullPool) for u in (url, other_url)]
    try:
        with engines[0].connect() as first, engines[1].connect() as second:
            name = lock_name(first)
            assert name == lock_name(second)
            assert name.startswith("flask_entitydb_migrate:")
            assert len(name) <= 64
            with (
                migration_lock(first, timeout=1),
                pytest.raises(LockTimeoutError),
                migration_lock(second, timeout=0),
            ):
                pass
    finally:
        for engine in engines:
            engine.dispose()


PROCESSES = 8


def worker(url: str, use_lock: bool, log: Path, ready: Path, go: Path) -> None:
    """One process: read the counter, pause, write it back plus one (a lost-update race
    unless the lock serialises the processes); log entering and leaving."""

    def note(word: str) -> None:
        with log.open("a") as f:
            f.write(f"{word} {os.getpid()}\n")

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        (ready.parent / f"{ready.name}{os.getpid()}").touch()
        while not go.exists():
            time.sleep(0.005)
        lock = migration_lock(conn, timeout=60) if use_lock else contextlib.nullcontext()
        with lock:
            note("enter")
            n = conn.execute(sa.text("SELECT n FROM counter")).scalar_one()
            conn.commit()
            time.sleep(0.1)
            conn.execute(sa.text("UPDATE counter SET n = :n"), {"n": n + 1})
            conn.commit()
            note("exit")
    engine.dispose()


def run_workers(engine: sa.Engine, url: str, tmp_path: Path, *, use_lock: bool) -> list[str]:
    """Start the worker processes, release them at once, return the log lines."""
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        conn.execute(sa.text("INSERT INTO counter (n) VALUES (0)"))
    log, ready, go = tmp_path / "log", tmp_path / "ready-", tmp_path / "go"
    # fork: the children start at once, without importing everything again
    context = multiprocessing.get_context("fork")
    procs = [
        context.Process(target=worker, args=(url, use_lock, log, ready, go))
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        while len(list(tmp_path.glob("ready-*"))) < PROCESSES:
            assert all(p.is_alive() for p in procs), "a worker died while starting"
            time.sleep(0.02)
        go.touch()
        for p in procs:
            p.join(timeout=120)
        assert [p.exitcode for p in procs] == [0] * PROCESSES
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    return log.read_text().splitlines()


def is_serial(lines: list[str]) -> bool:
    """Every 'enter' is directly followed by the 'exit' of the same process."""
    pairs = zip(lines[::2], lines[1::2], strict=True)
    return all(a.split()[0] == "enter" and b == a.replace("enter", "exit") for a, b in pairs)


def counter(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT n FROM counter")).scalar_one())


def test_concurrent_processes_are_mutually_excluded(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    lines = run_workers(engine, database_url, tmp_path, use_lock=True)
    assert len(lines) == 2 * PROCESSES
    assert is_serial(lines), lines
    assert counter(engine) == PROCESSES


def test_without_the_lock_the_same_workers_lose_updates(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    """Control: shows the test above can fail, i.e. that the workers really overlap."""
    lines = run_workers(engine, database_url, tmp_path, use_lock=False)
    assert not is_serial(lines)
    assert counter(engine) < PROCESSES


# -- whole runs: Alembic's own API, a one-connection pool ----------------------------------


def test_alembic_python_api_upgrades_are_locked(package: AppPackage, database_url: str) -> None:
    """Two deploy scripts calling ``alembic.command.upgrade(Config(...), "head")`` at once
    apply the slow revision once (before: no lock at all, the revision ran twice)."""
    write_slow_revisions(package, 3)
    first = popen_api_upgrade(package)
    second = popen_api_upgrade(package)
    results = [finish(first), finish(second)]
    assert [code for code, _, _ in results] == [0, 0], results
    assert len(runlog(database_url)) == 1
    assert "extra" in columns(database_url)
    assert package.version() == {"r2"}
    # the one that waited said so, naming the holder
    waited = [out + err for _, out, err in results if "Waiting up to" in out + err]
    assert len(waited) == 1 and "held by" in waited[0], results


def test_upgrade_with_a_one_connection_pool(package: AppPackage, database_url: str) -> None:
    """``pool_size=1, max_overflow=0``: the migration needs one pooled connection only
    (before: the lock took it, the migration waited for a second one, timed out)."""
    write_slow_revisions(package, 0)
    options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 3}
    app = package.create_app(ENTITYDB_ENGINE_OPTIONS=options)
    result = package.cli("upgrade", app=app)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert package.version() == {"r2"}
    result = package.cli("downgrade", "r1", app=app)
    assert result.exit_code == 0, result.output
    result = package.cli("stamp", "r2", app=app)
    assert result.exit_code == 0, result.output
    assert package.version() == {"r2"}


def test_verbose_upgrade_names_the_lock_and_why(package: AppPackage, backend: str) -> None:
    write_slow_revisions(package, 0)
    result = package.cli("upgrade", "-v")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("Migration lock: "))
    expected = {
        "sqlite": "file lock on",
        "mysql": "GET_LOCK('flask_entitydb_migrate:",
        "postgresql": "pg_advisory_lock(",
    }[backend]
    assert expected in line, line
    assert {"sqlite": "(SQLite)", "mysql": "single MySQL/MariaDB server",
            "postgresql": "autocommit_block()"}[backend] in line  # fmt: skip


def test_lease_mode_on_a_plain_server(package: AppPackage, database_url: str, backend: str) -> None:
    """``ENTITYDB_MIGRATION_LOCK = "lease"`` works on MySQL and PostgreSQL, and its table
    never shows up in autogenerate."""
    if backend == "sqlite":
        pytest.skip("SQLite always uses its lock file")
    write_slow_revisions(package, 2)
    first = popen_upgrade(
        package, None, "-v", extra_env={"TESTAPP_ENTITYDB_MIGRATION_LOCK": "lease"}
    )
    second = popen_upgrade(
        package, None, "-v", extra_env={"TESTAPP_ENTITYDB_MIGRATION_LOCK": "lease"}
    )
    results = [finish(first), finish(second)]
    assert [code for code, _, _ in results] == [0, 0], results
    assert len(runlog(database_url)) == 1
    assert all("lease row" in out for _, out, _ in results), results
    app = package.create_app(ENTITYDB_MIGRATION_LOCK="lease")
    result = package.cli("check", app=app)
    assert "flask_entitydb_lock" not in result.output, result.output


STEAL = """
other = sa.create_engine(op.get_bind().engine.url, poolclass=sa.pool.NullPool)
with other.begin() as connection:  # another process takes the lease over
    connection.exec_driver_sql("DELETE FROM flask_entitydb_lock")
other.dispose()
"""


def test_a_lost_lease_stops_before_the_next_revision(
    package: AppPackage, database_url: str, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite always uses its lock file")
    write_slow_revisions(package, 0, third=True)
    package.write_revision("r2", "r1", STEAL)
    code, out, err = finish(
        popen_upgrade(package, None, extra_env={"TESTAPP_ENTITYDB_MIGRATION_LOCK": "lease"})
    )
    assert code == 1, (out, err)
    err = without_database_line(err)
    assert err.startswith("Error: The migration lease 'flask_entitydb_migrate:"), err
    assert "was lost (it is now held by nobody" in err
    assert "stopped before the next revision" in err and err.count("\n") == 1
    assert "r3" not in out and package.version() != {"r3"}
