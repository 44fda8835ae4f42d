"""``flask db`` through the real ``flask`` command and Alembic's own command line, in
subprocesses, on SQLite, MariaDB and PostgreSQL: the workflow, the raw-Alembic route,
8 concurrent upgrades, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa
from helpers.migration_apps import (
    INIT,
    USER_ENTITY,
    USER_ENTITY_WITH_EMAIL,
    AppPackage,
    without_database_line,
)

from flask_entitydb import migrations
from flask_entitydb.migrations._locks.locking import migration_lock

pytestmark = pytest.mark.slow


def _ok(package: AppPackage, *args: str) -> str:
    result = package.run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_workflow_through_the_flask_command(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    _ok(package, "init")
    assert "add table 'users'" in _ok(package, "migrate", "-m", "users", "-v")
    assert "Applied" in _ok(package, "upgrade")
    assert package.tables() == {"alembic_version", "users"}

    package.write_entity("user", USER_ENTITY_WITH_EMAIL)
    result = package.run("check")
    assert result.returncode == 1
    assert "add column 'users.email'" in result.stdout

    result = package.run("migrate", "-m", "email")
    assert result.returncode == 0, result.stderr
    # Flask-Migrate's streams: Alembic's log lines on stderr, the new file on stdout
    database = result.stderr.splitlines()[0]  # the database it compared with, named first
    assert database.startswith("Database: ") and database.endswith("in the environment)")
    assert without_database_line(result.stderr).startswith("INFO  [alembic.autogenerate.compare")
    assert "] Detected added column 'users.email'\n" in result.stderr
    assert result.stdout.startswith("Generating ") and result.stdout.endswith("...  done\n")
    assert "Applied" in _ok(package, "upgrade")
    assert "matches the entities" in _ok(package, "check")

    out = _ok(package, "downgrade", "base")
    assert out.count("Reverted") == 2
    assert package.tables() == {"alembic_version"}


def test_alembic_run_directly(package: AppPackage) -> None:
    """FLASK_APP=<app> python -m alembic.config -c <app>/migrations/alembic.ini ..."""
    package.write_entity("user", USER_ENTITY)
    app = package.create_app()
    migrations.init(app=app)
    new = migrations.migrate(message="users", app=app)
    assert new is not None
    ini = str(package.migrations / "alembic.ini")
    alembic = [sys.executable, "-m", "alembic.config", "-c", ini]

    # env.py takes the migration lock itself when Alembic runs it directly
    engine = package.engine()
    with engine.connect() as connection, migration_lock(connection, timeout=5):
        result = package.run_command([*alembic, "-x", "lock_timeout=0.2", "upgrade", "head"])
    engine.dispose()
    assert result.returncode != 0
    assert "FAILED: Could not take the migration lock" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert package.version() == set()

    result = package.run_command([*alembic, "upgrade", "head"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Applied {new.revision}: users" in result.stdout
    assert package.version() == {new.revision}
    assert "users" in package.tables()

    result = package.run_command([*alembic, "downgrade", "base"])
    assert result.returncode == 0, result.stderr
    assert f"Reverted {new.revision}: users" in result.stdout
    assert package.tables() == {"alembic_version"}

    # from another working directory, with nothing on PYTHONPATH: alembic.ini's
    # prepend_sys_path (relative to the file) finds the app
    assert "prepend_sys_path = %(here)s/../..\n" in (package.migrations / "alembic.ini").read_text()
    elsewhere = package.src.parent / "elsewhere"
    elsewhere.mkdir()
    env_elsewhere = package.env()
    env_elsewhere.pop("PYTHONPATH")
    result = subprocess.run(
        [*alembic, "upgrade", "head"],
        env=env_elsewhere,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Applied {new.revision}: users" in result.stdout
    assert package.version() == {new.revision}

    # without FLASK_APP: Alembic's one "FAILED:" line, no traceback
    env_without_app = package.env()
    del env_without_app["FLASK_APP"]
    result = subprocess.run(
        [*alembic, "upgrade", "head"],
        env=env_without_app,
        cwd=package.src,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "FAILED:" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


EVENT_ENTITY = """\
class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
"""


def test_concurrent_upgrades_apply_each_revision_once(package: AppPackage) -> None:
    package.write_entity("event", EVENT_ENTITY)
    migrations.init(app=package.create_app())
    package.write_revision(
        "r1",
        None,
        """
        op.create_table(
            "events",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(50), nullable=False),
        )
        """,
        "op.drop_table('events')",
        message="events",
    )
    package.write_revision(
        "r2",
        "r1",
        """
        time.sleep(1.0)  # keep the lock long enough for the others to queue up
        op.execute("INSERT INTO events (name) VALUES ('once')")
        """,
        message="data step",
    )

    processes = [package.popen("upgrade") for _ in range(8)]
    outputs = [process.communicate(timeout=180) for process in processes]
    codes = [process.returncode for process in processes]
    assert codes == [0] * 8, outputs

    stdouts = [out for out, _ in outputs]
    assert sum("Applied r2: data step" in out for out in stdouts) == 1
    assert sum("Applied r1: events" in out for out in stdouts) == 1
    assert sum("Nothing to do" in out for out in stdouts) == 7
    assert package.scalar("SELECT COUNT(*) FROM events") == 1
    assert package.version() == {"r2"}


def test_errors_are_one_line_without_password(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    migrations.init(app=package.create_app())
    url = sa.make_url(package.url)
    if url.get_backend_name() == "sqlite":
        package.url = "sqlite:////nonexistent-folder/sub/db.sqlite3"
    else:
        package.url = url.set(host="127.0.0.1", port=9, password="s3cr3t-pw").render_as_string(
            hide_password=False
        )

    result = package.run("upgrade")
    assert result.returncode == 1
    errors = without_database_line(result.stderr)
    assert errors.startswith("Error: Cannot connect to the database")
    assert errors.count("\n") == 1, result.stderr
    assert "s3cr3t-pw" not in result.stderr + result.stdout

    result = package.run("-d", "no-such-folder", "current")
    assert result.returncode == 1
    assert without_database_line(result.stderr).count("\n") == 1, result.stderr
    assert "There is no migrations folder at" in result.stderr


# values of driver arguments that fail only when connecting: a traceback before
DRIVER_ARGUMENTS = {
    "mysql": [
        ({"init_command": 5}, "'init_command'"),
        ({"local_infile": "x"}, "'local_infile'"),
        ({"client_flag": "x"}, "'client_flag'"),
    ],
    "postgresql": [
        ({"prepare_threshold": "x"}, "'prepare_threshold'"),
        ({"port": "x"}, "connection option"),
    ],
}


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("mysql", marks=pytest.mark.mysql),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ],
)
def test_a_driver_argument_of_the_wrong_type_is_one_line(
    package: AppPackage, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ENTITYDB_ENGINE_OPTIONS`` set through the environment (``from_prefixed_env``)."""
    package.write_entity("user", USER_ENTITY)
    package.write(
        "__init__.py",
        INIT.replace(
            "app.config.update(config)",
            "app.config.from_prefixed_env('MYAPP')\n    app.config.update(config)",
        ),
    )
    _ok(package, "init")
    for connect_args, named in DRIVER_ARGUMENTS[backend]:
        options = json.dumps({"connect_args": connect_args})
        monkeypatch.setenv("MYAPP_ENTITYDB_ENGINE_OPTIONS", options)
        result = package.run("current")
        errors = without_database_line(result.stderr)
        assert result.returncode == 1, (options, result.stdout + result.stderr)
        assert "Traceback" not in result.stderr, (options, result.stderr)
        assert errors.startswith("Error: ") and errors.count("\n") == 1, (options, errors)
        assert named in errors, (options, errors)
        assert "check that the server is running" not in errors, (options, errors)
