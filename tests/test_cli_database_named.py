"""Every ``flask db`` command that works on a database names it (password masked) on
stderr, as Flyway does; the embedded SQLite default says ``DB_CONNECTION_STRING`` is not
set, and the app warns at start-up when it falls back to it outside debug and testing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from helpers.migration_apps import USER_ENTITY, AppPackage, make_package, ok

from flask_entitydb import ConfigurationError, EntityDB

DATABASE_COMMANDS = [
    ("upgrade",),
    ("downgrade", "base"),
    ("stamp", "head"),
    ("current",),
    ("check",),
    ("migrate", "-m", "again", "--allow-empty"),
    ("revision", "--autogenerate", "-m", "auto", "--allow-empty"),
]
FILE_COMMANDS = [("lint",), ("history",), ("heads",), ("show", "head"), ("branches",)]


def _database_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Database: ")]


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=lambda a: a[0] if a else "")
def test_each_database_command_names_the_database(
    sqlite_package: AppPackage, args: tuple[str, ...]
) -> None:
    package = sqlite_package
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "users"))
    ok(package.cli("upgrade"))
    result = package.cli(*args)
    assert result.exit_code == 0, result.output
    assert _database_lines(result.stderr) == [
        f"Database: {package.url} (DB_CONNECTION_STRING in the app config)"
    ]
    assert "Database: " not in result.stdout  # stdout stays what scripts parse


@pytest.mark.parametrize("args", FILE_COMMANDS, ids=lambda a: a[0])
def test_commands_reading_only_files_do_not(
    sqlite_package: AppPackage, args: tuple[str, ...]
) -> None:
    package = sqlite_package
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "users"))
    result = package.cli(*args)
    assert result.exit_code == 0, result.output
    assert _database_lines(result.stderr) == []


@pytest.mark.mysql
def test_the_password_is_masked_and_named_when_the_command_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "mysql+mysqldb://root:s3cr3tPW@127.0.0.1:3306/test"
    package = next(make_package(tmp_path, url, monkeypatch))
    ok(package.cli("init"))
    result = package.cli("current")
    assert result.exit_code == 1  # the wrong password
    assert _database_lines(result.stderr) == [
        "Database: mysql+mysqldb://root:***@127.0.0.1:3306/test"
        " (DB_CONNECTION_STRING in the app config)"
    ]
    assert "s3cr3tPW" not in result.output


def test_the_sqlite_default_says_the_variable_is_not_set(
    sqlite_package: AppPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DB_CONNECTION_STRING", raising=False)
    package = sqlite_package
    app = package.create_app(DB_CONNECTION_STRING=None)
    assert app.config["DB_CONNECTION_STRING"] is None
    ok(package.cli("init", app=app))
    result = package.cli("current", app=app)
    assert result.exit_code == 0, result.output
    path = Path(app.instance_path) / "entitydb.sqlite3"
    assert _database_lines(result.stderr) == [
        f"Database: the SQLite file {path} (DB_CONNECTION_STRING is not set)"
    ]


def test_start_up_warns_about_the_sqlite_default_outside_debug_and_testing(
    make_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("DB_CONNECTION_STRING", raising=False)
    levels = {}
    for name, config in {
        "production": {"TESTING": False},
        "testing": {"TESTING": True},
        "debug": {"TESTING": False, "DEBUG": True},
    }.items():
        caplog.clear()
        app = make_app()
        app.config.update(config)
        with caplog.at_level(logging.INFO, logger="flask_entitydb"):
            EntityDB(app)
        (record,) = [r for r in caplog.records if "DB_CONNECTION_STRING is not set" in r.message]
        levels[name] = record.levelname
        if name == "production":
            assert "quote" in record.getMessage()  # the shell-cut hint
    assert levels == {"production": "WARNING", "testing": "INFO", "debug": "INFO"}


@pytest.mark.parametrize(
    "value",
    [
        "mysql+mysqldb://root:s3cret@localhost:3306/flask?ssl=true&",
        "mysql+mysqldb://root:s3cret@localhost:3306/flask?",
        "postgresql+psycopg://u:s3cret@localhost/app?sslmode=",
    ],
)
def test_a_value_cut_by_a_shell_gets_a_hint(make_app: Callable[..., Flask], value: str) -> None:
    app = make_app(DB_CONNECTION_STRING=value)
    with pytest.raises(ConfigurationError) as info:
        EntityDB(app)
    text = str(info.value)
    assert "looks cut short" in text
    assert "quote" in text
    assert "s3cret" not in text


def test_the_database_is_named_as_configured(
    sqlite_package: AppPackage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'ssl=true' stays in the line (the driver's own TLS arguments replace it inside)."""
    url = "mysql+mysqldb://root:s3cr3tPW@127.0.0.1:9/app?ssl=true"
    package = sqlite_package
    ok(package.cli("init"))
    app = package.create_app(DB_CONNECTION_STRING=url)
    result = package.cli("current", app=app)
    assert result.exit_code == 1  # nothing listens on port 9
    assert _database_lines(result.stderr) == [
        "Database: mysql+mysqldb://root:***@127.0.0.1:9/app?ssl=true"
        " (DB_CONNECTION_STRING in the app config)"
    ]
    assert "s3cr3tPW" not in result.output
