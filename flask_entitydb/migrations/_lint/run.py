"""``flask db lint``: the hazards of revisions for a running app, before they reach it.

The revisions' ``upgrade()`` functions run in recording mode (:mod:`.lint_record`); the
recorded operations are judged by the every-backend rules (:mod:`.lint_rules`), on
MySQL/MariaDB by the server itself on a scratch database (:mod:`.lint_mysql`), and on
PostgreSQL by squawk (:mod:`.lint_squawk`) and, for column type changes, by the server on
a scratch database (:mod:`.lint_postgresql`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from alembic.script import Script, ScriptDirectory
from flask import Flask

from flask_entitydb._settings.masking import mask_text
from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._config import make_config
from flask_entitydb.migrations._context import PathArg
from flask_entitydb.migrations._context import current_flask_app as _app
from flask_entitydb.migrations._context import database_heads as _database_heads
from flask_entitydb.migrations._context import running as _running
from flask_entitydb.migrations._lint.mysql import copy_findings
from flask_entitydb.migrations._lint.postgresql import judged_type_change, type_rewrites
from flask_entitydb.migrations._lint.record import (
    Recorded,
    RecordedRevision,
    record,
    revision_allows,
)
from flask_entitydb.migrations._lint.rules import RULES, check_generic, describe
from flask_entitydb.migrations._lint.squawk import squawk_findings
from flask_entitydb.migrations._locks.runlock import galera_status
from flask_entitydb.migrations.binds import bind_database, bind_engine, bind_name, selected_bind

_MYSQL = frozenset({"mysql", "mariadb"})
_DDL = ("ALTER ", "CREATE INDEX", "CREATE UNIQUE INDEX", "DROP ", "RENAME ")


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


def _selected(
    script: ScriptDirectory, rev_range: str | None, found: tuple[str, ...] | None
) -> list[Script]:
    """The revisions to lint, oldest first: a ``start:end`` range, one revision, every
    revision (``found`` is ``None``), or those not applied to a database at ``found``."""
    if rev_range:
        if ":" in rev_range:
            base, top = (part.strip() or None for part in rev_range.split(":", 1))
            chosen = list(script.walk_revisions(base=base or "base", head=top or "heads"))
        else:
            chosen = [s for s in script.get_revisions(rev_range) if s is not None]
        return list(reversed(chosen))
    everything = list(reversed(list(script.walk_revisions())))
    if found is None:
        return everything
    applied: set[str] = set()
    for rev in found:
        applied.update(s.revision for s in script.iterate_revisions(rev, "base"))
    return [s for s in everything if s.revision not in applied]


def _finding(item: Recorded, rule: str, detail: str = "") -> LintFinding:
    definition = RULES[rule]
    return LintFinding(
        rule=rule,
        revision=item.revision,
        path=item.path,
        line=item.line,
        operation=describe(item.operation),
        effect=definition.effect,
        recipe=definition.recipe,
        allowed=rule in item.allowed,
        detail=detail,
    )


def _unreadable(revision: RecordedRevision) -> LintFinding:
    script = revision.script
    allowed = "not-recorded" in revision_allows(script.path)
    return LintFinding(
        rule="not-recorded",
        revision=script.revision,
        path=os.path.abspath(script.path),
        line=revision.error_line,
        operation="upgrade()",
        effect=f"could not be read without a database ({revision.error}), so it was not checked",
        recipe="review it by hand and mark it '# entitydb: allow not-recorded', or keep"
        " upgrade() to op calls",
        allowed=allowed,
    )


def _server_version(engine: sa.Engine) -> tuple[str | None, str | None]:
    try:
        with engine.connect() as connection:
            info = connection.dialect.server_version_info or ()
    except sa.exc.DBAPIError as error:
        return None, mask_text(" ".join(str(error.orig).split()))
    return ".".join(str(part) for part in info[:2]) or None, None


def _galera_note(engine: sa.Engine, items: Sequence[Recorded]) -> str | None:
    """On a Galera node: that the schema changes of existing tables among ``items`` stall
    writes to their tables on every node while they run (total order isolation)."""
    tables = sorted(
        {
            str(getattr(item.operation, "table_name", None) or "?")
            for item in items
            if not item.new_table and any(s.upper().startswith(_DDL) for s in item.statements)
        }
    )
    if not tables:
        return None
    try:
        with engine.connect() as connection:
            status = galera_status(connection)
    except sa.exc.DBAPIError:
        return None  # the server checks above already said why the server cannot be read
    if status is None:
        return None
    size, method = status
    return (
        f"Galera cluster of {size} node(s) (wsrep_OSU_method={method}): each schema change of"
        f" an existing table ({', '.join(tables)}) runs on every node at once and blocks"
        " writes to that table cluster-wide until it ends; INSTANT changes take"
        " milliseconds, but a table copy or an index build on a large table stalls the"
        " whole cluster for as long: run those with pt-online-schema-change, or node by"
        " node with wsrep_OSU_method=RSU outside flask db"
    )


def lint(
    rev_range: str | None = None,
    *,
    all_revisions: bool = False,
    directory: PathArg = None,
    app: Flask | None = None,
) -> LintResult:
    """Lint revisions for the app's database dialect (``flask db lint``); the revisions
    of the bind selected with :func:`~flask_entitydb.migrations.binds.using_bind`.

    :param rev_range: ``start:end``, ``start:``, ``:end`` or one revision; default: the
        revisions not applied to the database (``all_revisions``: every revision).
    :returns: a :class:`LintResult`; ``result.ok`` is false when a hazard that is not
        marked ``# entitydb: allow <rule>`` was found.
    :raises MigrationError: no migrations folder, unknown revision, database unreachable
        (for the default range), squawk missing (PostgreSQL).
    """
    app = _app(app)
    with _running(app) as state:
        settings = state.settings
        key = selected_bind()
        url = bind_database(state, key).url
        reads_db = not rev_range and not all_revisions
        config = make_config(app, directory, runs_env=reads_db)
        script = ScriptDirectory.from_config(config)
        found = _database_heads(config) if reads_db else None
        try:
            chosen = _selected(script, rev_range, found)
        except Exception as error:
            raise MigrationError(
                f"Unknown revision range '{rev_range}' ({error}); use 'start:end', a revision"
                " id, or '--all'."
            ) from None
        linted = {s.revision for s in chosen}
        order = list(reversed(list(script.walk_revisions())))
        last = max((order.index(s) for s in chosen), default=-1)
        recorded = record(order[: last + 1], url)
        result = _judge(recorded, chosen, linted, bind_engine(state, key), url, settings)
        return replace(result, bind=bind_name(key))


def _judge(
    recorded: list[RecordedRevision],
    chosen: list[Script],
    linted: set[str],
    engine: sa.Engine,
    url: sa.URL,
    settings: Any,
) -> LintResult:
    backend = url.get_backend_name()
    notes: list[str] = []
    findings: list[LintFinding] = []
    items = [
        item
        for revision in recorded
        if revision.script.revision in linted
        for item in revision.operations
    ]
    judged: set[int] = set()  # operations whose type change the server judged
    extra: dict[int, list[LintFinding]] = {}
    if items and backend in _MYSQL:
        copies, _checked, failure = copy_findings(url, recorded, linted)
        if failure is None:
            judged = {id(item) for item in items}
        else:
            notes.append(
                f"the server check stopped ({failure}); 'alter-column-type' is judged by"
                " rule instead"
            )
        for copy in copies:
            extra.setdefault(id(copy.item), []).append(
                _finding(copy.item, "mysql-table-copy", copy.reason)
            )
        galera = _galera_note(engine, items)
        if galera is not None:
            notes.append(galera)
        if settings.migration_lock_timeout is None:
            for item in items:
                if not item.new_table and any(s.upper().startswith(_DDL) for s in item.statements):
                    extra.setdefault(id(item), []).append(_finding(item, "no-lock-timeout"))
    if backend == "postgresql" and any(judged_type_change(item) for item in items):
        rewrites, judged, failure = type_rewrites(url, recorded, linted)
        if failure is not None:
            notes.append(
                f"the server check of type changes stopped ({failure}); 'alter-column-type'"
                " is judged by rule for the ones after it"
            )
        for rewrite in rewrites:
            extra.setdefault(id(rewrite.item), []).append(
                _finding(rewrite.item, "alter-column-type", rewrite.reason)
            )
    if items and backend == "postgresql":
        version, failure = _server_version(engine)
        if failure is not None:
            notes.append(f"server version unknown ({failure}); squawk assumed a recent one")
        stream = [
            pair
            for revision in recorded
            if revision.script.revision in linted
            for pair in revision.stream
        ]
        for hit in squawk_findings(
            stream, pg_version=version, lock_timeout=settings.migration_lock_timeout
        ):
            extra.setdefault(id(hit.item), []).append(_finding(hit.item, hit.rule, hit.message))
    for revision in recorded:
        if revision.script.revision not in linted:
            continue
        if revision.error is not None:
            findings.append(_unreadable(revision))
        for item in revision.operations:
            for rule in check_generic(item, backend, type_change=id(item) not in judged):
                findings.append(_finding(item, rule))
            findings += extra.get(id(item), [])
    return LintResult(
        dialect=backend,
        revisions=tuple(s.revision for s in chosen),
        findings=tuple(findings),
        notes=tuple(notes),
    )
