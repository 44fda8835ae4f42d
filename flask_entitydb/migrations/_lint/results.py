"""What ``flask db lint`` reports: a finding (one hazard of one operation), the result of
one bind, and the JSON document of one bind or several (``flask db lint --json``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LintFinding:
    """One hazard of one operation."""

    rule: str
    revision: str
    path: str
    line: int
    operation: str
    effect: str
    recipe: str
    allowed: bool = False
    """Marked as a reviewed exception (``# entitydb: allow <rule>``)."""
    detail: str = ""
    """What the server or squawk said, when they decided it."""

    def location(self) -> str:
        """``file:line``, relative to the working directory when below it."""
        path = os.path.relpath(self.path) if self.path.startswith(os.getcwd()) else self.path
        return f"{path}:{self.line}"

    def describe(self) -> list[str]:
        """The finding as printed by ``flask db lint``."""
        tag = " (allowed)" if self.allowed else ""
        lines = [f"{self.location()}: {self.rule}{tag}: {self.operation}"]
        lines.append(f"    effect: {self.effect}")
        if self.detail:
            lines.append(f"    server: {self.detail}")
        lines.append(f"    recipe: {self.recipe}")
        return lines


@dataclass(frozen=True)
class OnlineVerdict:
    """MariaDB: an operation the server runs online but not instantly, as it said on the
    scratch database (not a hazard: writes go on)."""

    revision: str
    line: int
    operation: str
    table: str | None
    algorithm: str
    """``NOCOPY`` (in place, no rebuild) or ``INPLACE`` (the table is rebuilt in place)."""
    rebuilds: bool
    rows: int | None = None
    """The table's rows in the database lint reads (the server's estimate), if it has it."""
    megabytes: float | None = None
    """Its data and indexes, in MB."""
    seconds: float | None = None
    """Roughly how long the rebuild takes at the measured rate (``None``: not a rebuild,
    or the table's size is unknown)."""
    message: str = ""


@dataclass(frozen=True)
class LintResult:
    """What ``flask db lint`` found."""

    dialect: str
    revisions: tuple[str, ...]
    """The revisions linted, oldest first."""
    findings: tuple[LintFinding, ...] = ()
    notes: tuple[str, ...] = field(default=())
    """What could not be checked, and why."""
    bind: str = "default"
    """The bind whose revisions were linted (its ``ENTITYDB_BINDS`` key, or ``default``)."""
    online: tuple[OnlineVerdict, ...] = ()
    """MariaDB: the linted operations the server runs ``NOCOPY`` or ``INPLACE`` (a
    rebuild; printed, with a rough time)."""

    @property
    def ok(self) -> bool:
        """No finding other than allowed ones."""
        return not any(not finding.allowed for finding in self.findings)

    def describe(self) -> list[str]:
        """The report of ``flask db lint``, line by line."""
        lines: list[str] = []
        for finding in self.findings:
            lines += finding.describe()
        lines += [f"Note: {note}" for note in self.notes]
        lines += [f"Rebuild: {verdict.message}" for verdict in self.online if verdict.rebuilds]
        count = sum(1 for f in self.findings if not f.allowed)
        allowed = len(self.findings) - count
        revisions = len(self.revisions)
        summary = (
            f"{count} hazard{'s' if count != 1 else ''} in {revisions}"
            f" revision{'s' if revisions != 1 else ''} ({self.dialect})"
        )
        if allowed:
            summary += f", {allowed} allowed"
        lines.append(summary + ".")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-ready data (``flask db lint --json`` of one bind); each
        finding names the bind too."""
        return {
            "bind": self.bind,
            "dialect": self.dialect,
            "revisions": list(self.revisions),
            "ok": self.ok,
            "findings": [{**asdict(finding), "bind": self.bind} for finding in self.findings],
            "notes": list(self.notes),
            "online": [asdict(verdict) for verdict in self.online],
        }


def json_report(results: Sequence[LintResult]) -> dict[str, Any]:
    """One JSON document for the results of one bind or several (``flask db lint --json``).

    One result: :meth:`LintResult.to_json`. Several: ``ok`` (every bind ok), ``findings``
    (every bind's, in bind order, each with its ``bind``) and ``binds`` (each bind's own
    document by name), so ``.ok`` and ``.findings[]`` read the same in both shapes.
    """
    if len(results) == 1:
        return results[0].to_json()
    documents = {result.bind: result.to_json() for result in results}
    return {
        "ok": all(result.ok for result in results),
        "findings": [finding for doc in documents.values() for finding in doc["findings"]],
        "binds": documents,
    }
