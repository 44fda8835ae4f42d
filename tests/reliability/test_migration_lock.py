"""The migration lock when the server drops connections: ``wait_timeout``, ``KILL``,
PostgreSQL's ``idle_session_timeout`` and ``pg_terminate_backend``.

Upgrade A runs a revision that sleeps on the server longer than the idle timeout; upgrade
B starts meanwhile. Before, the lock sat on a second, idle connection: the server dropped
it, B took the lock and applied the revision again (two ``runlog`` rows, a duplicate
column). Now the lock is held by the migrating connection, which is never idle.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers.databases import create_database
from helpers.lock_scenario import (
    columns,
    error_lines,
    finish,
    kill_lock_holder,
    popen_upgrade,
    popen_upgrade_logging_errors,
    runlog,
    sleeping,
    wait_until,
    write_slow_revisions,
)
from helpers.migration_apps import AppPackage
from helpers.servers import MariaDBServer

from .conftest import ServerFactory

SLEEP = 10
OVERLAP_SLEEP = 25
"""The overlapping runs' slow revision: long enough for the second run to start and wait
for the lock after the idle timeout, on a loaded machine too."""


@pytest.fixture(scope="module")
def short_timeout_mariadb(mariadb_server_factory: ServerFactory) -> MariaDBServer:
    """A private MariaDB dropping connections idle for 3 s."""
    return mariadb_server_factory(options=["--wait-timeout=3"])


@pytest.fixture
def mariadb_url(short_timeout_mariadb: MariaDBServer) -> Iterator[str]:
    name = short_timeout_mariadb.create_database()
    yield short_timeout_mariadb.url(name)
    short_timeout_mariadb.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def postgresql_url(tmp_path: Path) -> Iterator[str]:
    """A fresh database on the shared PostgreSQL that ends sessions idle for 2 s (set on
    this database only)."""
    url, drop = create_database("postgresql", tmp_path)
    name = sa.make_url(url).database
    engine = sa.create_engine(
        sa.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as connection:
        connection.exec_driver_sql(f"ALTER DATABASE {name} SET idle_session_timeout = 2000")
    engine.dispose()
    yield url
    drop()


MYSQL = pytest.param("mariadb_url", id="mysql", marks=pytest.mark.private_server)
POSTGRESQL = pytest.param("postgresql_url", id="postgresql", marks=pytest.mark.postgresql)


@pytest.fixture
def package_url(request: pytest.FixtureRequest) -> str:
    """The database of the fixture a test names with ``parametrize("package_url", [MYSQL],
    indirect=True)``: on the private MariaDB or on the shared PostgreSQL."""
    return str(request.getfixturevalue(request.param))


def _run_overlapping_once(package: AppPackage) -> list[tuple[int, str, str]]:
    """Upgrade A sleeps past the idle timeout, upgrade B starts meanwhile: both succeed
    and the revision ran once."""
    url = package.url
    write_slow_revisions(package, OVERLAP_SLEEP)
    first = popen_upgrade(package)
    wait_until(lambda: sleeping(url), what="the first upgrade's slow revision")
    time.sleep(3.5)  # longer than the idle timeout of the server
    second = popen_upgrade(package)
    results = [finish(first), finish(second)]
    assert [code for code, _, _ in results] == [0, 0], results
    assert len(runlog(url)) == 1, results
    assert "extra" in columns(url)
    return results


@pytest.mark.parametrize("package_url", [MYSQL], indirect=True)
def test_idle_timeout_does_not_release_the_lock_mysql(package: AppPackage) -> None:
    results = _run_overlapping_once(package)
    assert "Waiting up to 60 s for the migration lock" in results[1][2], results
    assert "held by connection" in results[1][2]


@pytest.mark.parametrize("package_url", [POSTGRESQL], indirect=True)
def test_idle_session_timeout_does_not_release_the_lock_postgresql(package: AppPackage) -> None:
    results = _run_overlapping_once(package)
    assert "held by backend pid" in results[1][2], results


def _run_killed(package: AppPackage, url: str, errors: Path) -> list[tuple[int, str, str]]:
    write_slow_revisions(package, SLEEP)
    first = popen_upgrade(package)
    wait_until(lambda: sleeping(url), what="the first upgrade's slow revision")
    second = popen_upgrade_logging_errors(package, errors)
    # however slowly the second starts on a loaded machine, it waits for the lock now
    wait_until(
        lambda: "Waiting up to" in errors.read_text(), timeout=120, what="the second to wait"
    )
    kill_lock_holder(url)
    code, out, _ = finish(second)
    return [finish(first), (code, out, errors.read_text())]


@pytest.mark.parametrize("package_url", [MYSQL, POSTGRESQL], indirect=True)
def test_killed_lock_holder_stops_and_the_waiter_migrates_once(
    package: AppPackage, package_url: str, tmp_path: Path
) -> None:
    """``KILL`` / ``pg_terminate_backend`` of the connection holding the lock: that run
    fails with one line and stops; the waiting run applies the revision, once."""
    url = package_url
    errors = tmp_path / "second.err"
    (code_a, out_a, err_a), (code_b, out_b, err_b) = _run_killed(package, url, errors)
    assert code_a == 1, (out_a, err_a)
    # one error line (a lock notice may come first: it is not an error)
    [error] = error_lines(err_a)
    assert error.startswith("Error: Revision 'r2' (revision r2) failed:"), err_a
    assert "Traceback" not in err_a
    assert "Waiting up to 60 s for the migration lock" in err_b, err_b
    assert code_b == 0, (out_b, err_b)
    assert "Upgraded: 1 revision" in out_b or "Upgraded: 2 revisions" in out_b, out_b
    assert len(runlog(url)) == 1
    assert "extra" in columns(url)
