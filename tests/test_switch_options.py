"""Switching a Flask-Migrate migrations folder: ``init --replace-env`` (backup, removed
customisations, apps that migrate at start-up), Alembic run directly with the kept
``alembic.ini``, and Flask-Migrate's options (issue 15 items 5-7)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from flask import Flask
from helpers.migration_apps import INIT, USER_ENTITY, AppPackage, ok

from flask_entitydb.migrations._config import TEMPLATES_DIR

INCLUDE_OBJECT = """

def include_object(object, name, type_, reflected, compare_to):
    return not (type_ == "table" and name.startswith("legacy_"))

"""

STARTUP_UPGRADE_INIT = INIT.replace(
    "from flask_entitydb import EntityDB\n",
    "from flask_entitydb import EntityDB\nfrom flask_entitydb.migrations import upgrade\n",
).replace(
    "    db.init_app(app)\n",
    "    db.init_app(app)\n"
    "    with app.app_context():\n"
    "        upgrade()  # was flask_migrate.upgrade()\n",
)


def flask_migrate_folder(folder: Path, *, include_object: bool = False) -> None:
    """A migrations folder written by Flask-Migrate itself (``flask db init``), with the
    usual ``include_object`` customisation added to its env.py if asked."""
    import flask_migrate
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("legacy_app")
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    flask_migrate.Migrate(app, SQLAlchemy(app))
    with app.app_context():
        flask_migrate.init(directory=str(folder))
    if include_object:
        env = folder / "env.py"
        text = env.read_text()
        text = text.replace("\ndef get_metadata():", INCLUDE_OBJECT + "\ndef get_metadata():")
        text = text.replace(
            "            target_metadata=get_metadata(),\n            **conf_args",
            "            target_metadata=get_metadata(),\n"
            "            include_object=include_object,\n"
            "            **conf_args",
        )
        assert "include_object=include_object" in text
        env.write_text(text)


def test_replace_env_keeps_a_backup_and_lists_what_it_removed(
    sqlite_package: AppPackage,
) -> None:
    package = sqlite_package
    flask_migrate_folder(package.migrations, include_object=True)
    old = (package.migrations / "env.py").read_text()
    package.write_entity("user", USER_ENTITY)

    result = package.cli("init", "--replace-env")
    assert result.exit_code == 0, result.output
    backup = package.migrations / "env.py.bak"
    env = package.migrations / "env.py"
    assert backup.read_text() == old
    assert "run_migrations()" in env.read_text()
    assert f"Replaced '{env}' with flask-entitydb's env.py; the old one is kept as '{backup}'." in (
        result.stdout
    )
    removed = result.stderr.splitlines()
    assert removed[0].startswith("The old env.py had more than Flask-Migrate's stock env.py")
    assert removed[1].startswith(
        "  - include_object=include_object (context.configure): list the tables to leave"
        " alone in ENTITYDB_EXCLUDE_TABLES"
    )
    assert "run_migrations(include_object=...)" in removed[1]
    assert removed[2].startswith("  - function 'include_object' (line ")
    assert len(removed) == 3  # nothing of the stock env.py is reported

    # a second run keeps the first backup and does not back up our own env.py
    again = package.cli("init", "--replace-env")
    assert again.exit_code == 0 and "kept as" not in again.output
    assert backup.read_text() == old and not (package.migrations / "env.py.bak1").exists()


def test_stock_flask_migrate_env_reports_nothing_removed(sqlite_package: AppPackage) -> None:
    flask_migrate_folder(sqlite_package.migrations)
    sqlite_package.write_entity("user", USER_ENTITY)
    result = sqlite_package.cli("init", "--replace-env")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "Added 'script_location', 'prepend_sys_path', 'path_separator' to" in result.stdout


def test_alembic_run_directly_with_the_kept_alembic_ini(package: AppPackage) -> None:
    flask_migrate_folder(package.migrations)
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init", "--replace-env"))
    ini = package.migrations / "alembic.ini"
    text = ini.read_text()
    assert "script_location = %(here)s" in text
    assert "[loggers]" in text  # the rest is kept as it was
    ok(package.cli("migrate", "-m", "users", "--rev-id", "u1"))

    alembic = [sys.executable, "-m", "alembic.config", "-c", str(ini)]
    result = package.run_command([*alembic, "upgrade", "head"])
    assert result.returncode == 0, result.stderr
    assert "script_location" not in result.stderr
    assert package.version() == {"u1"}
    result = package.run_command([*alembic, "current"])
    assert result.returncode == 0 and result.stdout == "u1 (head)\n", result.stderr
    result = package.run_command([*alembic, "downgrade", "base"])
    assert result.returncode == 0, result.stderr
    assert package.version() == set()


def test_replace_env_works_for_an_app_that_migrates_at_start_up(
    sqlite_package: AppPackage,
) -> None:
    package = sqlite_package
    flask_migrate_folder(package.migrations)
    package.write_entity("user", USER_ENTITY)
    package.write("__init__.py", STARTUP_UPGRADE_INIT)
    package.write_revision(
        "u1", None, "op.create_table('users', sa.Column('id', sa.Integer, primary_key=True))"
    )

    result = package.run("init", "--replace-env")
    assert result.returncode == 0, result.stderr
    assert "Skipped migrating at start-up while 'flask db init' runs" in result.stderr
    assert "Replaced" in result.stdout
    assert package.version() == set()  # not migrated by the command that fixes the folder

    # the next start migrates, and the commands work
    result = package.run("current")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "u1 (head)\n"
    assert package.version() == {"u1"}

    # elsewhere, a folder that cannot be used still fails the start-up
    (package.migrations / "env.py").unlink()
    result = package.run("current")
    assert result.returncode != 0
    assert "has no env.py" in result.stderr


def test_fresh_init_works_for_an_app_that_migrates_at_start_up(
    sqlite_package: AppPackage,
) -> None:
    sqlite_package.write_entity("user", USER_ENTITY)
    sqlite_package.write("__init__.py", STARTUP_UPGRADE_INIT)
    result = sqlite_package.run("init")
    assert result.returncode == 0, result.stderr
    assert "Created the migrations folder" in result.stdout


WIDER_NAME = USER_ENTITY.replace("sa.String(80)", "sa.String(120)")
WITH_DEFAULT = USER_ENTITY.replace(
    "mapped_column(sa.String(80))", "mapped_column(sa.String(80), server_default='x')"
)


def test_compare_type_and_server_default_can_be_turned_off(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "users"))
    ok(package.cli("upgrade"))

    package.write_entity("user", WIDER_NAME)
    result = package.cli("check")
    assert result.exit_code == 1 and "users.name" in result.output
    app = package.create_app(ENTITYDB_COMPARE_TYPE=False)
    assert "matches the entities" in ok(package.cli("check", app=app))

    package.write_entity("user", WITH_DEFAULT)
    result = package.cli("check")
    assert result.exit_code == 1 and "users.name" in result.output
    app = package.create_app(ENTITYDB_COMPARE_SERVER_DEFAULT=False)
    assert "matches the entities" in ok(package.cli("check", app=app))

    # Migrate(app, db, compare_type=False) becomes run_migrations(compare_type=False)
    package.write_entity("user", WIDER_NAME)
    env = package.migrations / "env.py"
    env.write_text(
        env.read_text().replace("run_migrations()", "run_migrations(compare_type=False)")
    )
    assert "matches the entities" in ok(package.cli("check"))


def test_compare_flags_must_be_booleans(sqlite_package: AppPackage) -> None:
    from flask_entitydb import ConfigurationError

    with pytest.raises(ConfigurationError, match="'ENTITYDB_COMPARE_TYPE' must be True or False"):
        sqlite_package.create_app(ENTITYDB_COMPARE_TYPE="no")


def test_templates(sqlite_package: AppPackage, tmp_path: Path) -> None:
    package = sqlite_package
    package.write_entity("user", USER_ENTITY)
    out = ok(package.cli("list-templates"))
    assert out.startswith("Available templates:\n\nentitydb - flask-entitydb migrations")
    assert "flask db init --template entitydb" in out

    result = package.cli("init", "-t", "flask")
    assert result.exit_code == 1
    assert "'flask' is a Flask-Migrate template: its env.py needs Flask-Migrate" in result.stderr
    result = package.cli("init", "--template", "nope")
    assert result.exit_code == 1 and "There is no template 'nope'" in result.stderr
    assert not package.migrations.exists()

    ok(package.cli("init", "-t", "entitydb"))
    assert "run_migrations()" in (package.migrations / "env.py").read_text()

    custom = tmp_path / "my-template"
    shutil.copytree(Path(TEMPLATES_DIR) / "entitydb", custom)
    (custom / "script.py.mako").write_text(
        (custom / "script.py.mako").read_text() + "\n# our house style\n"
    )
    other = tmp_path / "other-migrations"
    ok(package.cli("-d", str(other), "init", "--template", str(custom)))
    assert (other / "script.py.mako").read_text().endswith("# our house style\n")
    ok(package.cli("-d", str(other), "revision", "-m", "by hand", "--rev-id", "h1"))
    assert "# our house style" in (other / "versions" / "h1_by_hand.py").read_text()


def test_alembic_ini_options_replace_migrate_configure(sqlite_package: AppPackage) -> None:
    """``@migrate.configure`` callbacks changed Alembic's Config in code; the same
    options go into ``alembic.ini``, which every command reads."""
    package = sqlite_package
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ini = package.migrations / "alembic.ini"
    ini.write_text(
        ini.read_text().replace(
            "script_location = %(here)s",
            "script_location = %(here)s\nfile_template = custom_%%(rev)s_%%(slug)s",
        )
    )
    out = ok(package.cli("migrate", "-m", "create models", "--rev-id", "0001"))
    assert "custom_0001_create_models.py" in out
    assert (package.versions / "custom_0001_create_models.py").exists()
