"""How many times a command loads the revision files (issue 28): each load runs every
file's module code, seconds for 1,000 revisions. ``flask db migrate`` loads them once,
for its head check, Alembic's autogenerate and the lint of the revision it writes.

Counted the way a user could see it: a revision file that appends a line to a file each
time it is run."""

from __future__ import annotations

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
