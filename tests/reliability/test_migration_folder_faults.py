"""``flask db`` with a broken migrations folder, an unknown revision or two heads, on SQLite,
MariaDB and PostgreSQL: one ``Error:`` line, exit code 1, no traceback, nothing written.

Failing revisions, concurrent upgrades and lock timeouts are covered by
``tests/test_migrations_failures.py`` and ``tests/test_cli_subprocess.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result
from helpers.migration_apps import USER_ENTITY, AppPackage, ok, without_database_line

pytestmark = pytest.mark.filterwarnings("ignore:No entity classes found")


@pytest.fixture
def package(package: AppPackage) -> AppPackage:
    """The conftest's package, with a migrations folder and one revision."""
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    package.write_revision(
        "r1", None, "op.create_table('t1', sa.Column('id', sa.Integer, primary_key=True))"
    )
    return package


def refused(result: Result, *fragments: str) -> str:
    """The single error line of a command that must have failed cleanly."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    stderr = without_database_line(result.stderr)
    assert stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    for fragment in fragments:
        assert fragment in stderr, stderr
    return stderr


def assert_nothing_written(package: AppPackage) -> None:
    assert package.tables() <= {"alembic_version"}
    assert package.version() == set()


Breakage = Callable[[AppPackage], None]


def syntax_error_in_revision(package: AppPackage) -> None:
    package.write_revision("r2", "r1", "op.execute('SELECT 1'")


def revision_with_unknown_parent(package: AppPackage) -> None:
    package.write_revision("r2", "nope", "pass")


def env_py_missing(package: AppPackage) -> None:
    (package.migrations / "env.py").unlink()


def alembic_ini_garbage(package: AppPackage) -> None:
    (package.migrations / "alembic.ini").write_text("this is [not an ini file\n= =\n")


def folder_is_a_file(package: AppPackage) -> None:
    for path in sorted(package.migrations.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    package.migrations.rmdir()
    package.migrations.write_text("not a folder\n")


def folder_missing(package: AppPackage) -> None:
    for path in sorted(package.migrations.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    package.migrations.rmdir()


def two_heads(package: AppPackage) -> None:
    package.write_revision("r2", "r1", "pass", message="left")
    package.write_revision("r3", "r1", "pass", message="right")


BREAKAGES = [
    pytest.param(
        syntax_error_in_revision, ("r2_rev.py'", "syntax error on line 15"), id="syntax-error"
    ),
    pytest.param(
        revision_with_unknown_parent, ("r2_rev.py'", "follows revision 'nope'"), id="unknown-parent"
    ),
    pytest.param(env_py_missing, ("has no env.py", "--replace-env"), id="env-py-missing"),
    pytest.param(
        alembic_ini_garbage, ("alembic.ini' is not a valid ini file",), id="alembic-ini-garbage"
    ),
    pytest.param(folder_is_a_file, ("no migrations folder",), id="folder-is-a-file"),
    pytest.param(folder_missing, ("no migrations folder",), id="folder-missing"),
    pytest.param(two_heads, ("flask db merge",), id="two-heads"),
]


@pytest.mark.parametrize(("breakage", "fragments"), BREAKAGES)
def test_upgrade_with_a_broken_folder(
    package: AppPackage, breakage: Breakage, fragments: tuple[str, ...]
) -> None:
    breakage(package)
    refused(package.cli("upgrade"), *fragments)
    assert_nothing_written(package)


@pytest.mark.parametrize(
    "breakage", [syntax_error_in_revision, revision_with_unknown_parent, alembic_ini_garbage]
)
@pytest.mark.parametrize("command", ["history", "heads", "check", "migrate", "stamp"])
def test_other_commands_with_a_broken_folder(
    package: AppPackage, breakage: Breakage, command: str
) -> None:
    breakage(package)
    refused(package.cli(command))
    assert_nothing_written(package)


@pytest.mark.parametrize("command", [["upgrade", "nope"], ["downgrade", "nope"], ["stamp", "nope"]])
def test_unknown_revision_writes_nothing(package: AppPackage, command: list[str]) -> None:
    refused(package.cli(*command), "'nope'")
    assert_nothing_written(package)


def test_two_heads_message_says_what_to_do(package: AppPackage) -> None:
    two_heads(package)
    refused(package.cli("upgrade"), "flask db merge")
    ok(package.cli("upgrade", "heads"))  # what the message suggests works
    assert package.version() == {"r2", "r3"}
