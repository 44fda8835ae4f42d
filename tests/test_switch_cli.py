"""The ``flask db`` output Flask-Migrate users and their scripts rely on (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.migration_apps import USER_ENTITY, AppPackage, ok

INIT_DATABASE_GROUP = """\
from flask import Flask

from flask_entitydb import EntityDB

from .base import Base

db = EntityDB(base=Base, command_name="database")


def create_app(**config):
    app = Flask(__name__)
    app.config.update(config)
    db.init_app(app)
    return app
"""


@pytest.fixture
def package_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/app.sqlite3"


def test_init_names_the_real_command_group(package: AppPackage) -> None:
    package.write("__init__.py", INIT_DATABASE_GROUP)
    package.write_entity("user", USER_ENTITY)
    app = package.create_app()
    result = app.test_cli_runner().invoke(args=["database", "init"])
    assert result.exit_code == 0, result.output
    assert "next, run 'flask database migrate -m \"first revision\"'" in result.output
    assert "and 'flask database upgrade'." in result.output
    assert "flask db" not in result.output
    result = app.test_cli_runner().invoke(args=["database", "current"])
    assert result.exit_code == 0 and "'flask database upgrade' applies them" in result.stderr


def test_current_and_heads_print_alembics_lines(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    package.write_revision("a1", None, "pass", message="root")
    package.write_revision("b1", "a1", "pass", message="users")
    ok(package.cli("upgrade"))
    assert ok(package.cli("current")) == "b1 (head)\n"
    assert ok(package.cli("heads")) == "b1 (head)\n"
    assert ok(package.cli("history")) == "a1 -> b1 (head), users\n<base> -> a1, root\n"
    out = ok(package.cli("current", "-v"))
    assert out.startswith("Current revision(s) for sqlite:///")
    assert "Rev: b1 (head)" in out and "Parent: a1" in out
