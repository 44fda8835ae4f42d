"""Alembic's own command line on a switched app (issue 29, item 4): with a kept
``alembic.ini`` that says ``script_location = .``, from the repository root and from the
migrations folder, for an app that upgrades at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers.migration_apps import USER_ENTITY, AppPackage

ALEMBIC = str(Path(sys.executable).with_name("alembic"))

STARTUP_INIT = """\
import os

from flask import Flask

from flask_entitydb import EntityDB
from flask_entitydb.migrations import upgrade

from .base import Base

db = EntityDB(base=Base)


def create_app(**config):
    app = Flask(__name__)
    app.config.update(config)
    db.init_app(app)
    with app.app_context():
        upgrade()
    return app
"""


def _alembic(package: AppPackage, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ALEMBIC, *args],
        env=package.env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _switched(package: AppPackage) -> Path:
    """A folder with one revision and an ``alembic.ini`` saying ``script_location = .``;
    the app upgrades at start-up."""
    package.write_entity("user", USER_ENTITY)
    result = package.run("init")
    assert result.returncode == 0, result.stderr
    result = package.run("migrate", "-m", "users", "--rev-id", "u1")
    assert result.returncode == 0, result.stderr
    ini = package.migrations / "alembic.ini"
    text = ini.read_text()
    assert "\nscript_location = %(here)s\n" in text
    ini.write_text(text.replace("\nscript_location = %(here)s\n", "\nscript_location = .\n"))
    package.write("__init__.py", STARTUP_INIT)
    return ini


def test_from_the_migrations_folder_with_an_app_that_upgrades_at_start_up(
    sqlite_package: AppPackage,
) -> None:
    package = sqlite_package
    _switched(package)
    upgraded = _alembic(package, "upgrade", "head", cwd=package.migrations)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Traceback" not in upgraded.stderr
    assert "Skipped migrating at start-up while Alembic loads the app" in upgraded.stderr
    assert "Applied u1: users" in upgraded.stdout
    assert package.version() == {"u1"}
    # the start-up upgrade does not undo Alembic's downgrade
    downgraded = _alembic(package, "downgrade", "base", cwd=package.migrations)
    assert downgraded.returncode == 0, downgraded.stderr
    assert package.version() == set()
    current = _alembic(package, "current", cwd=package.migrations)
    assert current.returncode == 0 and current.stdout == "", current.stderr


def test_from_the_repository_root_after_replace_env(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    ini = _switched(package)
    relative = str(ini.relative_to(package.src))

    # 'script_location = .' is Alembic's to read from the working directory: it finds
    # no env.py at the root, before any code of ours runs; 'flask db' says what to change
    before = _alembic(package, "-c", relative, "upgrade", "head", cwd=package.src)
    assert before.returncode != 0 and "Can't find Python file env.py" in before.stderr
    current = package.run("current")
    assert current.returncode == 0, current.stderr
    assert (
        f"'{ini}' says 'script_location = .', which Alembic run directly takes from the"
        " working directory" in current.stderr
    )
    assert "run 'flask db init --replace-env' or write 'script_location = %(here)s'" in (
        current.stderr
    )

    replaced = package.run("init", "--replace-env")
    assert replaced.returncode == 0, replaced.stderr
    assert "Added 'script_location'" in replaced.stdout
    text = ini.read_text()
    assert "\nscript_location = %(here)s\n" in text
    assert "\n# script_location = .  (replaced" in text

    upgraded = _alembic(package, "-c", relative, "upgrade", "head", cwd=package.src)
    assert upgraded.returncode == 0, upgraded.stderr
    assert package.version() == {"u1"}
    assert _alembic(package, "current", cwd=package.migrations).stdout == "u1 (head)\n"
    assert "script_location = ." not in package.run("current").stderr
