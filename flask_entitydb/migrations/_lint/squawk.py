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
from typing import Any

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
    streams: list[list[tuple[str, Recorded | None]]],
    *,
    pg_version: str | None,
    lock_timeout: float | None,
) -> tuple[list[SquawkFinding], list[Recorded]]:
    """squawk's findings on the statements of ``streams``: one stream per revision, each
    the statements in the order they run, with their operation (``BEGIN``/``COMMIT`` of
    autocommit blocks with none). Each revision is its own file for squawk, as it runs in
    its own transaction: a table is "new" to squawk only in the revision that creates it,
    and a statement squawk cannot parse hides no finding of another revision.

    :param lock_timeout: the lock timeout migrations run with (``SET lock_timeout`` is
        put first, as ``run_migrations`` does), ``None`` when there is none.
    :returns: the findings, and the operations with a statement squawk could not parse
        (left out, and the rest of their revision checked again without them; a statement
        of no operation that squawk cannot parse hides the rest of its revision).
    """
    files = [_SquawkFile(stream, lock_timeout) for stream in streams]
    files = [file for file in files if file.owner]
    unparsed: list[Recorded] = []
    found: list[SquawkFinding] = []
    for attempt in range(2):
        reported = _run_squawk(files, pg_version)
        retry: list[_SquawkFile] = []
        for index, file in enumerate(files):
            entries = reported.get(f"r{index}.sql", [])
            bad = {id(file.owner.get(int(e.get("line", -1)))) for e in entries if _syntax(e)}
            bad.discard(id(None))
            if bad and attempt == 0:
                unparsed += [item for item in file.items() if id(item) in bad]
                retry.append(_SquawkFile(file.stream, lock_timeout, skip=bad))
                continue
            for entry in entries:
                rule = SQUAWK_RULES.get(str(entry.get("rule_name")))
                item = file.owner.get(int(entry.get("line", -1)))
                if rule is None or item is None or item.new_table:
                    continue
                found.append(SquawkFinding(item, rule, str(entry.get("message", ""))))
        files = retry
        if not files:
            break
    return _deduplicated(found), unparsed


def _syntax(entry: dict[str, object]) -> bool:
    return str(entry.get("rule_name")) == "syntax-error"


class _SquawkFile:
    """The SQL file squawk reads for one revision, and the operation of each line."""

    def __init__(
        self,
        stream: list[tuple[str, Recorded | None]],
        lock_timeout: float | None,
        skip: set[int] | None = None,
    ) -> None:
        self.stream = stream
        self.lines: list[str] = []
        self.owner: dict[int, Recorded] = {}
        if lock_timeout:
            self.lines += [f"SET lock_timeout = '{int(lock_timeout * 1000)}ms';", ""]
        for statement, item in stream:
            if skip and id(item) in skip:
                continue
            start = len(self.lines)
            self.lines += [*statement.splitlines()]
            self.lines[-1] += ";"
            if item is not None:
                for number in range(start, len(self.lines)):
                    self.owner[number] = item
            self.lines.append("")

    def items(self) -> list[Recorded]:
        """Its operations, in order, each once."""
        return list({id(item): item for item in self.owner.values()}.values())


def _run_squawk(files: list[_SquawkFile], pg_version: str | None) -> dict[str, list[Any]]:
    """squawk's JSON entries by file name (``r<index>.sql``)."""
    if not files:
        return {}
    with tempfile.TemporaryDirectory(prefix="entitydb-lint-") as folder:
        paths = []
        for index, file in enumerate(files):
            path = os.path.join(folder, f"r{index}.sql")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("\n".join(file.lines))
            paths.append(path)
        command = [squawk_executable(), "--reporter", "json", "--assume-in-transaction"]
        if pg_version:
            command += ["--pg-version", pg_version]
        done = subprocess.run(
            [*command, *paths], capture_output=True, text=True, timeout=120, check=False
        )
    try:
        reported = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise MigrationError(
            f"squawk failed ({' '.join(done.stderr.split())[:200]}); check the installed"
            " squawk with 'squawk --version'."
        ) from None
    by_file: dict[str, list[Any]] = {}
    for entry in reported:
        by_file.setdefault(os.path.basename(str(entry.get("file", ""))), []).append(entry)
    return by_file


def _deduplicated(found: list[SquawkFinding]) -> list[SquawkFinding]:
    with_fk = {id(f.item) for f in found if f.rule == "add-foreign-key-not-valid"}
    unique: dict[tuple[int, str], SquawkFinding] = {}
    for finding in found:
        if finding.rule == "add-check-not-valid" and id(finding.item) in with_fk:
            continue
        unique.setdefault((id(finding.item), finding.rule), finding)
    return list(unique.values())
