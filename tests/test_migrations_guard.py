"""The pending-migration guard (``ENTITYDB_PENDING_MIGRATIONS``) on SQLite, MariaDB and
PostgreSQL: checked once per process, warn or refuse to serve."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.migration_apps import USER_ENTITY, AppPackage, ok

from flask_entitydb import migrations
from flask_entitydb.migrations import _guard as guard


def _app(package: AppPackage, **config: Any) -> Flask:
    app = package.create_app(**config)

    @app.get("/")
    def index() -> str:
        return "hello"

    return app


def _statements(app: Flask) -> list[str]:
    """Every SQL statement the app's engine runs from now on."""
    seen: list[str] = []
    with app.app_context():
        engine = app.extensions["entitydb"].db.engine

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    return seen


def _behind(package: AppPackage) -> None:
    """A migrations folder with one revision the database does not have."""
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "users"))


def _guards(app: Flask) -> list[Any]:
    return [
        f
        for f in app.before_request_funcs.get(None, [])
        if isinstance(f, guard.PendingMigrationsGuard)
    ]


def test_ignore_is_the_default_outside_debug_and_adds_nothing(package: AppPackage) -> None:
    _behind(package)
    app = _app(package)
    assert _guards(app) == []
    assert app.test_client().get("/").status_code == 200


def test_warn_is_the_default_in_debug(package: AppPackage) -> None:
    _behind(package)
    assert len(_guards(_app(package, DEBUG=True))) == 1


def test_warn_logs_once_and_checks_once_per_process(
    package: AppPackage, caplog: pytest.LogCaptureFixture
) -> None:
    _behind(package)
    app = _app(package, ENTITYDB_PENDING_MIGRATIONS="warn")
    statements = _statements(app)
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_entitydb"):
        assert client.get("/").status_code == 200
        checked = len(statements)
        assert checked >= 1
        for _ in range(3):
            assert client.get("/").status_code == 200
    assert len(statements) == checked  # no query after the first request
    warnings = [r for r in caplog.records if "flask db upgrade" in r.getMessage()]
    assert len(warnings) == 1
    (head,) = package.revision_files()
    message = warnings[0].getMessage()
    assert message.startswith("The database is at no revision but the application's")
    assert f"'{head.name.split('_')[0]}'" in message


def test_error_refuses_to_serve_until_upgraded(
    package: AppPackage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _behind(package)
    (head,) = package.revision_files()
    head_id = head.name.split("_")[0]
    app = _app(package, ENTITYDB_PENDING_MIGRATIONS="error")
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_entitydb"):
        response = client.get("/")
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "The database schema is out of date; the service is not available yet." in body
    # nothing about the revisions or the commands for the public
    assert head_id not in body and "flask db" not in body and "revision" not in body
    (record,) = [r for r in caplog.records if r.name == "flask_entitydb"]
    assert record.levelno == logging.ERROR
    assert f"'{head_id}'" in record.getMessage()
    assert "run 'flask db upgrade'" in record.getMessage()

    # within the re-check interval, no new query
    statements = _statements(app)
    assert client.get("/").status_code == 503
    assert statements == []

    migrations.upgrade(app=app)
    monkeypatch.setattr(guard, "RECHECK_SECONDS", 0.0)
    app_guard = _guards(app)[0]
    app_guard._next_check = 0.0
    assert client.get("/").status_code == 200
    assert app_guard.done
    assert client.get("/").status_code == 200


def test_database_at_head_passes_silently(
    package: AppPackage, caplog: pytest.LogCaptureFixture
) -> None:
    _behind(package)
    ok(package.cli("upgrade"))
    app = _app(package, ENTITYDB_PENDING_MIGRATIONS="error")
    with caplog.at_level(logging.WARNING, logger="flask_entitydb"):
        assert app.test_client().get("/").status_code == 200
    assert caplog.records == []
    assert _guards(app)[0].done


def test_app_without_migrations_folder_is_not_checked(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    app = _app(package, ENTITYDB_PENDING_MIGRATIONS="error")
    assert app.test_client().get("/").status_code == 200
    assert _guards(app)[0].done


def test_unreachable_database_does_not_block_requests(
    package: AppPackage, caplog: pytest.LogCaptureFixture
) -> None:
    _behind(package)
    url = sa.make_url(package.url)
    if url.get_backend_name() == "sqlite":
        unreachable = "sqlite:////nonexistent-folder/sub/db.sqlite3"
    else:
        unreachable = url.set(host="127.0.0.1", port=9).render_as_string(hide_password=False)
    app = _app(package, ENTITYDB_PENDING_MIGRATIONS="error", DB_CONNECTION_STRING=unreachable)
    with caplog.at_level(logging.WARNING, logger="flask_entitydb"):
        assert app.test_client().get("/").status_code == 200  # the view needs no database
    assert any("Could not compare" in r.getMessage() for r in caplog.records)
    assert not _guards(app)[0].done  # tried again later


def _ahead(package: AppPackage) -> None:
    """The database at a revision the code's migrations do not have (a rollback deploy:
    the newer release migrated, then the older code came back)."""
    _behind(package)
    (newest,) = package.revision_files()
    package.write_revision("newer", newest.name.split("_")[0], "pass", message="newer release")
    ok(package.cli("upgrade"))
    next(package.versions.glob("newer_*.py")).unlink()  # the old code has no such file


def test_database_ahead_of_the_code_serves_and_warns_loudly(
    package: AppPackage, caplog: pytest.LogCaptureFixture
) -> None:
    _ahead(package)
    app = _app(package, ENTITYDB_PENDING_MIGRATIONS="error")
    with caplog.at_level(logging.WARNING, logger="flask_entitydb"):
        assert app.test_client().get("/").status_code == 200
        assert app.test_client().get("/").status_code == 200
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("The database is AHEAD of this code: it is at 'newer'")
    assert "downgrade" in record.getMessage()
    assert _guards(app)[0].done


def test_database_ahead_can_be_refused(package: AppPackage) -> None:
    _ahead(package)
    app = _app(package, ENTITYDB_PENDING_MIGRATIONS="error", ENTITYDB_DATABASE_AHEAD="error")
    response = app.test_client().get("/")
    assert response.status_code == 503
    assert guard.REFUSAL in response.text


def test_guard_reads_the_version_table_env_py_uses(package: AppPackage) -> None:
    """``run_migrations(version_table=...)`` in env.py: the guard reads that table (before:
    it read ``alembic_version``, saw no revision, and answered 503 for good)."""
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    env = package.migrations / "env.py"
    env.write_text(
        env.read_text().replace("run_migrations()", 'run_migrations(version_table="acme_versions")')
    )
    ok(package.cli("migrate", "-m", "users"))
    app = _app(package, ENTITYDB_PENDING_MIGRATIONS="error")
    assert app.test_client().get("/").status_code == 503  # behind: acme_versions is empty
    ok(package.cli("upgrade"))
    assert "alembic_version" not in package.tables()
    app = _app(package, ENTITYDB_PENDING_MIGRATIONS="error")
    assert app.test_client().get("/").status_code == 200
    assert _guards(app)[0].done
