"""Expected failures of ``flask db``: one clear line, a non-zero exit, no traceback, no
password; a failing revision; the migration lock; Flask-Migrate folders; logging."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.migration_apps import USER_ENTITY, AppPackage, ok, without_database_line

from flask_entitydb import MigrationError, migrations
from flask_entitydb.migrations._locks.locking import migration_lock


def _one_error_line(result: object, *fragments: str) -> str:
    exit_code = result.exit_code  # type: ignore[attr-defined]
    stderr = without_database_line(result.stderr)  # type: ignore[attr-defined]
    assert exit_code == 1, result.output  # type: ignore[attr-defined]
    assert stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    for fragment in fragments:
        assert fragment in stderr
    return stderr


def _unreachable(url: str) -> str:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return "sqlite:////nonexistent-folder/sub/db.sqlite3"
    return parsed.set(host="127.0.0.1", port=9, password="s3cr3t-pw").render_as_string(
        hide_password=False
    )


def test_bad_revision_id(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate"))
    for args in (["upgrade", "nope"], ["downgrade", "nope"], ["show", "nope"], ["stamp", "x1"]):
        _one_error_line(package.cli(*args), "Can't locate revision", "'flask db history'")


def test_database_unreachable(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate"))
    app = package.create_app(DB_CONNECTION_STRING=_unreachable(package.url))
    for command in ("upgrade", "current", "check", "migrate"):
        stderr = _one_error_line(package.cli(command, app=app), "Cannot connect to the database")
        assert "s3cr3t-pw" not in stderr


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("mysql", marks=pytest.mark.mysql),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ],
)
def test_cannot_connect_names_the_url_as_configured(package: AppPackage) -> None:
    """The error names the URL the user wrote (``ssl=true`` kept, no ``charset`` added
    by the dialect defaults), password masked."""
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    configured = _unreachable(package.url) + "?ssl=true&connect_timeout=5"
    app = package.create_app(DB_CONNECTION_STRING=configured)
    for command in ("current", "upgrade"):
        stderr = _one_error_line(package.cli(command, app=app), "Cannot connect to the database")
        shown = stderr.split("'")[1]
        assert ":***@127.0.0.1:9/" in shown, stderr
        assert sorted(shown.split("?")[1].split("&")) == ["connect_timeout=5", "ssl=true"], stderr
        assert "s3cr3t-pw" not in stderr, stderr


# only MariaDB's test server checks passwords: SQLite has none, and the PostgreSQL test
# server trusts local connections
@pytest.mark.parametrize("backend", [pytest.param("mysql", marks=pytest.mark.mysql)])
def test_wrong_password(package: AppPackage) -> None:
    user = f"edb_{uuid.uuid4().hex[:8]}"
    engine = package.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY 'right-pw'")
    try:
        package.write_entity("user", USER_ENTITY)
        ok(package.cli("init"))
        wrong = sa.make_url(package.url).set(username=user, password="wrong-pw-123")
        app = package.create_app(DB_CONNECTION_STRING=wrong.render_as_string(False))
        stderr = _one_error_line(package.cli("upgrade", app=app), "Access denied")
        assert "wrong-pw-123" not in stderr
        assert "***" in stderr
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP USER '{user}'@'%%'")
        engine.dispose()


def test_lock_timeout(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate"))
    engine = package.engine()
    try:
        with engine.connect() as connection, migration_lock(connection, timeout=5):
            for args in (["upgrade"], ["downgrade", "base"], ["stamp", "head"]):
                result = package.cli(*args, "--lock-timeout", "0.2")
                # one line when waiting starts, naming the holder; then the error
                waiting, error = without_database_line(result.stderr).splitlines()
                assert waiting.startswith("Waiting up to 0.2 s for the migration lock"), waiting
                assert "held by" in waiting, waiting
                assert error.startswith("Error: Could not take the migration lock"), error
                assert result.exit_code == 1 and "Traceback" not in result.output
            assert package.tables() <= {"alembic_version"}
        ok(package.cli("upgrade", "--lock-timeout", "0.2"))
        assert "users" in package.tables()
    finally:
        engine.dispose()


def test_failing_revision_is_named_and_upgrade_continues_after_the_fix(
    package: AppPackage,
) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    package.write_revision(
        "r1",
        None,
        "op.create_table('t1', sa.Column('id', sa.Integer, primary_key=True))",
        message="first table",
    )
    broken = """
        op.create_table('t2', sa.Column('id', sa.Integer, primary_key=True))
        op.execute("INSERT INTO no_such_table VALUES (1)")
    """
    package.write_revision("r2", "r1", broken, message="second table")

    stderr = _one_error_line(package.cli("upgrade"), "Revision 'r2' (second table) failed")
    backend = sa.make_url(package.url).get_backend_name()
    if backend == "postgresql":
        # transactional DDL: the whole run is undone
        assert stderr.endswith(
            "; the whole run was rolled back, so the database is as it was before; fix the"
            " revision and run the command again.\n"
        )
        assert package.version() == set()
        assert "t1" not in package.tables()
    elif backend == "sqlite":
        # transactional DDL, one transaction per revision: r2 is undone, r1 stays
        assert stderr.endswith(
            "; it was rolled back and the version table is at 'r1'; fix the revision and run"
            " the command again.\n"
        )
        assert "not transactional" not in stderr and "partial" not in stderr
        assert package.version() == {"r1"}
        assert "t1" in package.tables() and "t2" not in package.tables()
    else:
        # MySQL/MariaDB: DDL commits at once; one transaction per revision, stamped after each
        assert "the version table is at 'r1'" in stderr
        assert "may hold a partial change from 'r2'" in stderr
        assert stderr.endswith(
            "fix the revision, run 'flask db repair r2' (it runs again; '--applied' if its"
            " changes are all there) and run the command again.\n"
        )
        assert package.version() == {"r1"}
        assert {"t1", "t2"} <= package.tables()
        # the journal keeps the next upgrade from running it again until a person says so
        _one_error_line(
            package.cli("upgrade"), "Revision 'r2' (second table) failed in the run of", "repair r2"
        )
        assert "Marked 'r2' as rolled back" in ok(package.cli("repair"))

    fixed = """
        op.execute("CREATE TABLE IF NOT EXISTS t2 (id INTEGER PRIMARY KEY)")
        op.execute("INSERT INTO t2 (id) VALUES (1)")
    """
    package.write_revision("r2", "r1", fixed, message="second table")
    out = ok(package.cli("upgrade"))
    assert "Applied r2: second table" in out
    assert package.version() == {"r2"}
    assert package.scalar("SELECT COUNT(*) FROM t2") == 1


def test_a_python_error_in_a_revision_names_its_line(sqlite_package: AppPackage) -> None:
    """Before, only "failed: division by zero": no word of which line raised it."""
    package = sqlite_package
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    package.write_revision("r1", None, "op.create_table('t1', sa.Column('id', sa.Integer))")
    body = """
        op.create_table('t2', sa.Column('id', sa.Integer))
        rate = 1 / 0
    """
    path = package.write_revision("r2", "r1", body, message="python bug")
    line = path.read_text().splitlines().index("    rate = 1 / 0") + 1
    stderr = _one_error_line(package.cli("upgrade"))
    assert stderr == (
        f"Error: Revision 'r2' (python bug) failed: ZeroDivisionError on line {line} of"
        f" {path.name}: division by zero; it was rolled back and the version table is at"
        " 'r1'; fix the revision and run the command again.\n"
    )
    assert package.version() == {"r1"}


_INDEX_NEEDED_BY_A_FOREIGN_KEY = """
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        # the app's own bug: the foreign key needs the index (MariaDB error 1553)
        op.drop_index("ix_child_parent_id", table_name="child")
    else:
        op.execute("DELETE FROM no_such_table")
"""


def test_failed_downgrade_names_the_version_the_database_is_at(package: AppPackage) -> None:
    """Going down, the last step that succeeded is not the database's revision: the
    report reads the version table."""
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    package.write_revision(
        "r1",
        None,
        """
        op.create_table("parent", sa.Column("id", sa.Integer, primary_key=True))
        op.create_table(
            "child",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("parent_id", sa.Integer, nullable=True),
        )
        """,
        """
        op.drop_table("child")
        op.drop_table("parent")
        """,
        message="tables",
    )
    package.write_revision(
        "r2",
        "r1",
        """
        op.create_index("ix_child_parent_id", "child", ["parent_id"])
        with op.batch_alter_table("child") as batch:
            batch.create_foreign_key("fk_child_parent", "parent", ["parent_id"], ["id"])
        """,
        _INDEX_NEEDED_BY_A_FOREIGN_KEY,
        message="child index",
    )
    package.write_revision(
        "r3",
        "r2",
        "op.create_table('t3', sa.Column('id', sa.Integer, primary_key=True))",
        "op.drop_table('t3')",
        message="third table",
    )
    ok(package.cli("upgrade"))
    assert package.version() == {"r3"}

    result = package.cli("downgrade", "base")
    stderr = _one_error_line(result, "Revision 'r2' (child index) failed")
    backend = sa.make_url(package.url).get_backend_name()
    if backend == "mysql":
        assert "1553" in stderr
    if backend == "postgresql":
        assert "the whole run was rolled back" in stderr
        assert package.version() == {"r3"}
    else:
        # r3 was reverted: the database is at r2, whose downgrade failed
        assert package.version() == {"r2"}
        assert "the version table is at 'r2'" in stderr
        assert "'r3'" not in stderr
    ok(package.cli("current"))


def _flask_migrate_folder(folder: Path) -> None:
    """A migrations folder written by Flask-Migrate itself."""
    import flask_migrate
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("legacy_app")
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    flask_migrate.Migrate(app, SQLAlchemy(app))
    with app.app_context():
        flask_migrate.init(directory=str(folder))


def test_flask_migrate_folder_is_detected_and_switched(
    package: AppPackage, capsys: pytest.CaptureFixture[str]
) -> None:
    _flask_migrate_folder(package.migrations)
    capsys.readouterr()
    package.write_entity("user", USER_ENTITY)

    stderr = _one_error_line(package.cli("upgrade"), "Flask-Migrate", "--replace-env")
    assert "env.py" in stderr
    # commands that do not run env.py keep working
    ok(package.cli("heads"))

    out = ok(package.cli("init", "--replace-env"))
    assert "Replaced" in out
    assert "run_migrations()" in (package.migrations / "env.py").read_text()
    ok(package.cli("migrate", "-m", "users"))
    ok(package.cli("upgrade"))
    assert "matches the entities" in ok(package.cli("check"))


def test_init_refuses_an_existing_folder(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    _one_error_line(package.cli("init"), "already exists and is not empty")


def test_host_logging_is_not_reconfigured(
    package: AppPackage, caplog: pytest.LogCaptureFixture
) -> None:
    """Even with Flask-Migrate's alembic.ini, which has [loggers] sections that
    logging.config.fileConfig() would apply (disabling every existing logger)."""
    _flask_migrate_folder(package.migrations)
    package.write_entity("user", USER_ENTITY)
    app = package.create_app()
    ok(package.cli("init", "--replace-env", app=app))
    assert "[loggers]" in (package.migrations / "alembic.ini").read_text()

    app_logger = logging.getLogger(f"{package.name}.views")
    app_logger.setLevel(logging.DEBUG)
    handler = logging.StreamHandler()
    app_logger.addHandler(handler)
    root = logging.getLogger()
    root_state = (root.level, list(root.handlers))
    try:
        with app.app_context():
            migrations.migrate(message="users")
            migrations.upgrade()
            migrations.check()
        assert not app_logger.disabled
        assert app_logger.handlers == [handler]
        assert app_logger.level == logging.DEBUG
        assert (root.level, list(root.handlers)) == root_state
        assert not logging.getLogger("flask_entitydb").disabled
        with caplog.at_level(logging.INFO, logger=app_logger.name):
            app_logger.info("still logging")
        assert "still logging" in caplog.text
    finally:
        app_logger.removeHandler(handler)


def test_python_api_returns_values(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    app = package.create_app()
    with pytest.raises(MigrationError, match="app_context"):
        migrations.current()

    assert migrations.init(app=app) == str(package.migrations)
    new = migrations.migrate(message="users", app=app)
    assert new is not None and new.changes == ("add table 'users'",) and new.drops == ()
    with pytest.raises(MigrationError, match="run 'flask db upgrade' first"):
        migrations.migrate(app=app)
    seen: list[str] = []
    with app.app_context():
        assert migrations.current() == []
        applied = migrations.upgrade(on_apply=lambda item: seen.append(item.revision))
        assert [a.revision for a in applied] == [new.revision] == seen
        assert applied[0].action == "upgrade" and applied[0].message == "users"
        assert applied[0].elapsed >= 0
        assert migrations.upgrade() == []
        (current,) = migrations.current()
        assert current.revision == new.revision and current.is_current and current.is_head
        assert migrations.check().ok
        assert migrations.pending_revisions() == []
        assert "CREATE TABLE users" in migrations.upgrade_sql("base:head")
        reverted = migrations.downgrade(revision="base")
        assert [(r.revision, r.action) for r in reverted] == [(new.revision, "downgrade")]
        result = migrations.check()
        assert not result.ok and [i.revision for i in result.unapplied] == [new.revision]
        assert migrations.pending_revisions() == [new.revision]
        stamped = migrations.stamp(revision="head")
        assert [(s.revision, s.action) for s in stamped] == [(new.revision, "stamp")]


def test_database_at_an_unknown_revision(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate"))
    ok(package.cli("upgrade"))
    for path in package.revision_files():
        path.unlink()
    package.write_revision("other1", None, "pass")
    for args in (["current"], ["check"], ["migrate"], ["upgrade"], ["stamp", "head"]):
        _one_error_line(package.cli(*args), "which no file in", "stamp --purge")
    ok(package.cli("stamp", "--purge", "other1"))
    assert package.version() == {"other1"}


def test_flask_migrate_folder_in_the_working_directory_is_pointed_out(
    package: AppPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("-d", str(package.src / "migrations"), "init"))
    monkeypatch.chdir(package.src)  # ./migrations, where Flask-Migrate keeps it
    stderr = _one_error_line(
        package.cli("upgrade"), f"no migrations folder at '{package.migrations}'"
    )
    assert f"there is one at '{package.src / 'migrations'}'" in stderr
    assert "move it into the app's package" in stderr and "ENTITYDB_MIGRATIONS_DIR" in stderr
    # without one in the working directory, the plain message
    monkeypatch.chdir(package.path)
    stderr = _one_error_line(package.cli("upgrade"), "create it with 'flask db init'")
    assert "there is one at" not in stderr
