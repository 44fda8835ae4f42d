"""PostgreSQL rules of ``flask db lint`` through squawk (PyPI ``squawk-cli``): the
recorded SQL of the revisions goes to squawk in one file, and each squawk finding is mapped
back to the operation (revision file and line) whose statement it is about."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._lint.record import Recorded

SQUAWK_RULES = {
    "require-concurrent-index-creation": "create-index-not-concurrently",
    "adding-foreign-key-constraint": "add-foreign-key-not-valid",
    "constraint-missing-not-valid": "add-check-not-valid",
    "adding-not-nullable-field": "set-not-null",
    "adding-field-with-default": "volatile-default",
    "require-lock-timeout": "no-lock-timeout",
}
"""squawk's rule names, and ours for them. Only rules demonstrated on a real server (see
docs/safe-migrations.md) are taken from squawk."""


@dataclass(frozen=True)
class SquawkFinding:
    """One squawk finding on a recorded operation."""

    item: Recorded
    rule: str
    message: str


def squawk_executable() -> str:
    """The ``squawk`` program: next to this Python's scripts, else on ``PATH``."""
    here = os.path.join(os.path.dirname(sys.executable), "squawk")
    if os.access(here, os.X_OK):
        return here
    found = shutil.which("squawk")
    if found is None:
        raise MigrationError(
            "'flask db lint' needs squawk for PostgreSQL and it is not installed; install it"
            " with: pip install 'flask-entitydb[lint]'"
        )
    return found


def squawk_findings(
    stream: list[tuple[str, Recorded | None]],
    *,
    pg_version: str | None,
    lock_timeout: float | None,
) -> list[SquawkFinding]:
    """squawk's findings on the statements of ``stream`` (in the order they run, each with
    its operation; ``BEGIN``/``COMMIT`` of autocommit blocks with none).

    :param lock_timeout: the lock timeout migrations run with (``SET lock_timeout`` is
        put first, as ``run_migrations`` does), ``None`` when there is none.
    """
    lines: list[str] = []
    owner: dict[int, Recorded] = {}
    if lock_timeout:
        lines += [f"SET lock_timeout = '{int(lock_timeout * 1000)}ms';", ""]
    for statement, item in stream:
        start = len(lines)
        lines += [*statement.splitlines()]
        lines[-1] += ";"
        if item is not None:
            for number in range(start, len(lines)):
                owner[number] = item
        lines.append("")
    if not owner:
        return []
    with tempfile.TemporaryDirectory(prefix="entitydb-lint-") as folder:
        path = os.path.join(folder, "revisions.sql")
        with open(path, "w", encoding="utf-8") as file:
            file.write("\n".join(lines))
        command = [squawk_executable(), "--reporter", "json", "--assume-in-transaction"]
        if pg_version:
            command += ["--pg-version", pg_version]
        done = subprocess.run(
            [*command, path], capture_output=True, text=True, timeout=120, check=False
        )
    try:
        reported = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise MigrationError(
            f"squawk failed ({' '.join(done.stderr.split())[:200]}); check the installed"
            " squawk with 'squawk --version'."
        ) from None
    found: list[SquawkFinding] = []
    for entry in reported:
        rule = SQUAWK_RULES.get(str(entry.get("rule_name")))
        item = owner.get(int(entry.get("line", -1)))
        if rule is None or item is None or item.new_table:
            continue
        found.append(SquawkFinding(item, rule, str(entry.get("message", ""))))
    with_fk = {id(f.item) for f in found if f.rule == "add-foreign-key-not-valid"}
    unique: dict[tuple[int, str], SquawkFinding] = {}
    for finding in found:
        if finding.rule == "add-check-not-valid" and id(finding.item) in with_fk:
            continue
        unique.setdefault((id(finding.item), finding.rule), finding)
    return list(unique.values())
