"""The migration machinery leaves no connection open behind it (issue 29, item 1).

An app that upgrades in ``create_app`` and a test suite that builds an app per test made
one idle server connection per call, until the server refused clients. The connections
of the test's own database are counted on the server (``pg_stat_activity``,
``information_schema.PROCESSLIST``) before and after, with every app kept alive (so no
garbage collection hides a connection left in an app's pool).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.migration_apps import USER_ENTITY, USER_ENTITY_WITH_EMAIL, AppPackage, ok

from flask_entitydb import migrations


@pytest.fixture(
    params=[
        pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    """Server backends only: SQLite has no connections to count."""
    return str(request.param)


COUNT = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    "mysql": "SELECT count(*) FROM information_schema.PROCESSLIST"
    " WHERE DB = DATABASE() AND ID <> CONNECTION_ID()",
}


def server_connections(package: AppPackage) -> int:
    """Connections to the package's database other than the one counting them."""
    backend = sa.make_url(package.url).get_backend_name()
    return int(package.scalar(COUNT[backend]))


def settled_connections(package: AppPackage, expected: int, within: float = 5.0) -> int:
    """The package database's connection count once it reaches ``expected`` or after
    ``within`` seconds: a closed connection leaves the server's list asynchronously (its
    server thread or backend exits after the client's goodbye), so a count taken at once
    can still see a connection that was closed. A connection left open never leaves."""
    deadline = time.monotonic() + within
    count = server_connections(package)
    while count != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        count = server_connections(package)
    return count


def _migrations_folder(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "users", "--rev-id", "r1"))


def test_ten_apps_upgrading_at_start_up_leave_no_connection(package: AppPackage) -> None:
    _migrations_folder(package)
    before = server_connections(package)
    apps: list[Flask] = []
    for _ in range(10):
        app = package.create_app()
        with app.app_context():
            migrations.upgrade()
        apps.append(app)
    assert package.version() == {"r1"}
    assert settled_connections(package, before) == before
    # the apps still work: their own pools open connections when asked
    with apps[0].app_context():
        assert apps[0].extensions["entitydb"].db.session.execute(sa.text("SELECT 1")).scalar()


CALLS: dict[str, Callable[[Flask], Any]] = {
    "upgrade": lambda app: migrations.upgrade(app=app),
    "downgrade": lambda app: migrations.downgrade(revision="base", app=app),
    "stamp": lambda app: migrations.stamp(revisions="head", app=app),
    "current": lambda app: migrations.current(app=app),
    "show current": lambda app: migrations.show(revision="current", app=app),
    "history": lambda app: migrations.history(indicate_current=True, app=app),
    "check": lambda app: migrations.check(app=app),
    "pending_revisions": lambda app: migrations.pending_revisions(app=app),
    "migrate": lambda app: migrations.migrate(message="nothing", allow_empty=True, app=app),
    "lint": lambda app: migrations.lint(all_revisions=True, app=app),
    "squash": lambda app: migrations.squash(dry_run=True, app=app),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_every_api_function_closes_what_it_opened(package: AppPackage, name: str) -> None:
    _migrations_folder(package)
    ok(package.cli("upgrade"))
    before = server_connections(package)
    CALLS[name](package.create_app())
    assert settled_connections(package, before) == before


@pytest.mark.parametrize(
    "args", [("upgrade",), ("current",), ("check",), ("downgrade", "base"), ("lint", "--all")]
)
def test_commands_close_what_they_opened(package: AppPackage, args: tuple[str, ...]) -> None:
    _migrations_folder(package)
    ok(package.cli("upgrade"))
    before = server_connections(package)
    app = package.create_app()
    for _ in range(3):
        result = package.cli(*args, app=app)
        assert result.exit_code in (0, 1), result.output  # check/lint may find something
    assert settled_connections(package, before) == before


def test_a_process_that_upgraded_holds_no_connection_at_exit(package: AppPackage) -> None:
    """Nothing is left for the interpreter to close at exit (the ~10 s exit of issue 29):
    the process that upgraded ten apps has no more connections to the database as it
    ends than it had before (counted from inside it: the test process's own are not its)."""
    _migrations_folder(package)
    script = (
        "import sys\n"
        f"from {package.name} import create_app\n"
        "from flask_entitydb import migrations\n"
        "before = count(sys.argv[1])\n"
        "apps = []\n"
        "for _ in range(10):\n"
        "    app = create_app(DB_CONNECTION_STRING=sys.argv[1])\n"
        "    with app.app_context():\n"
        "        migrations.upgrade()\n"
        "    apps.append(app)\n"
        "print(count(sys.argv[1]) - before)\n"
    )
    result = package.run_command([sys.executable, "-c", COUNT_HELPER + script, package.url])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0"]
    assert package.version() == {"r1"}


COUNT_HELPER = f"""\
import sqlalchemy as sa
COUNT = {COUNT!r}
def count(url):
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        n = connection.execute(sa.text(COUNT[engine.url.get_backend_name()])).scalar()
    engine.dispose()
    return n
"""


def test_a_failed_command_closes_its_connection(package: AppPackage) -> None:
    """A run that fails discards its connection (the server may be gone): the driver's
    connection is closed too, not left for the garbage collector."""
    from flask_entitydb.errors import MigrationError

    _migrations_folder(package)
    ok(package.cli("upgrade"))
    before = server_connections(package)
    for _ in range(3):
        with pytest.raises(MigrationError, match="Can't locate revision"):
            migrations.upgrade(revision="nope", app=package.create_app())
    assert settled_connections(package, before) == before


def test_migrate_with_a_change_closes_what_it_opened(package: AppPackage) -> None:
    """``flask db migrate`` lints the revision it wrote (on MariaDB on a scratch database
    seeded from the app's database): that seeding borrowed a connection of the app's
    pool and left it there."""
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    before = server_connections(package)
    ok(package.cli("migrate", "-m", "users"))
    ok(package.cli("upgrade"))
    package.write_entity("user", USER_ENTITY_WITH_EMAIL)
    ok(package.cli("migrate", "-m", "email"))
    assert settled_connections(package, before) == before
