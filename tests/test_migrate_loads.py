"""What a command loads (issue 28).

How many times it loads the revision files: each load runs every file's module code,
seconds for 1,000 revisions. ``flask db migrate`` loads them once, for its head check,
Alembic's autogenerate and the lint of the revision it writes. Counted the way a user could
see it: a revision file that appends a line to a file each time it is run.

Which of flask-entitydb's modules it imports: a command that only reads the database does
not load the migration lock, the journal or the progress hooks; an app without read
replicas loads none of the replica routing."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from helpers.migration_apps import USER_ENTITY, USER_ENTITY_WITH_EMAIL, AppPackage, ok

COUNTED = """

import pathlib as _pathlib

with _pathlib.Path({path!r}).open("a") as _file:  # one line each time this file is run
    _file.write("loaded\\n")
"""


def _counted_history(package: AppPackage, tmp_path: Path) -> Path:
    """A folder whose one revision (applied) counts its loads in the file returned."""
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "create users"))
    (first,) = package.revision_files()
    loads = tmp_path / "loads.txt"
    first.write_text(first.read_text() + COUNTED.format(path=str(loads)))
    ok(package.cli("upgrade"))
    loads.unlink()
    return loads


def _loads(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_migrate_loads_the_revision_files_once(package: AppPackage, tmp_path: Path) -> None:
    loads = _counted_history(package, tmp_path)
    package.write_entity("user", USER_ENTITY_WITH_EMAIL)

    out = ok(package.cli("migrate", "-m", "add email"))

    assert "Detected added column 'users.email'" in out
    assert len(package.revision_files()) == 2
    assert _loads(loads) == 1  # not once for the check, once for Alembic, once for lint


def test_current_upgrade_and_lint_load_the_revision_files_once(
    package: AppPackage, tmp_path: Path
) -> None:
    loads = _counted_history(package, tmp_path)

    out = ok(package.cli("current"))
    assert out.endswith("(head)\n")
    assert _loads(loads) == 1

    out = ok(package.cli("downgrade", "base"))
    assert "Reverted" in out and package.tables() == {"alembic_version"}
    assert _loads(loads) == 2

    out = ok(package.cli("upgrade"))
    assert "Applied" in out and "users" in package.tables()
    assert _loads(loads) == 3

    result = package.cli("lint", "--all")
    assert "in 1 revision" in result.output, result.output
    assert _loads(loads) == 4


_MODULES_AT_EXIT = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('LOADED', sorted(m for m in sys.modules"
    " if m.startswith('flask_entitydb.')), file=sys.stderr))\n"
    "sys.argv = ['flask', *sys.argv[1:]]\n"
    "from flask.cli import main\n"
    "main()\n"
)

_CHANGING_ONLY = {
    "flask_entitydb.migrations._applying",
    "flask_entitydb.migrations._journal.journal",
    "flask_entitydb.migrations._locks.runlock",
    "flask_entitydb.migrations._locks.lease",
    "flask_entitydb.migrations._progress",
}
"""Modules only the commands that change the database need."""

_REPLICAS_ONLY = {
    "flask_entitydb._engine.routing",
    "flask_entitydb._engine.replica_reads",
    "flask_entitydb._engine.positions",
    "flask_entitydb._engine.cookie",
}
"""Modules only apps with read replicas need."""


def _modules_loaded(package: AppPackage, *args: str) -> set[str]:
    """flask-entitydb's modules a real ``flask db <args>`` process has imported at exit."""
    result = package.run_command([sys.executable, "-c", _MODULES_AT_EXIT, "db", *args])
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("LOADED "))
    return set(ast.literal_eval(line.removeprefix("LOADED ")))


def test_commands_that_only_read_load_no_lock_or_journal_code(
    sqlite_package: AppPackage,
) -> None:
    package = sqlite_package
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "create users"))

    assert _modules_loaded(package, "upgrade") >= _CHANGING_ONLY
    for command in (["current"], ["heads"], ["history"], ["check"]):
        assert _CHANGING_ONLY & _modules_loaded(package, *command) == set(), command
    # asked for, the journal's report loads
    assert "flask_entitydb.migrations._journal.report" in _modules_loaded(package, "current", "-v")


def test_an_app_without_replicas_loads_no_replica_routing(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "create users"))

    for command in (["upgrade"], ["current"]):
        assert _REPLICAS_ONLY & _modules_loaded(package, *command) == set(), command
