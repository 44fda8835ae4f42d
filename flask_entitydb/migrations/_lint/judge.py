"""Judging the recorded operations of ``flask db lint``: the every-backend rules
(:mod:`.rules`), on MySQL/MariaDB the server itself on a scratch database (:mod:`.mysql`)
and a note on a Galera node, on PostgreSQL squawk (:mod:`.squawk`) and, for column type
changes, the server on a scratch database (:mod:`.postgresql`); the findings in the order
of the revisions and their operations.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic.script import Script

from flask_entitydb._settings.masking import mask_text
from flask_entitydb.migrations._connections import closed_after
from flask_entitydb.migrations._lint.data import DEFAULT_MAX_ROWS, data_findings
from flask_entitydb.migrations._lint.live import failing_on_data
from flask_entitydb.migrations._lint.record import Recorded, RecordedRevision, revision_allows
from flask_entitydb.migrations._lint.results import LintFinding, LintResult, OnlineVerdict
from flask_entitydb.migrations._lint.rules import RULES, check_generic, describe
from flask_entitydb.migrations._server_facts import MYSQL

if TYPE_CHECKING:
    from flask_entitydb.migrations._lint.scratch import Seed

_DDL = ("ALTER ", "CREATE INDEX", "CREATE UNIQUE INDEX", "DROP ", "RENAME ")


def judge(
    recorded: list[RecordedRevision],
    chosen: list[Script],
    linted: set[str],
    engine: sa.Engine,
    url: sa.URL,
    lock_timeout: float | None,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: Seed | None = None,
    replay_reason: str = "the database is not at the revision before the linted ones",
    at_previous: str | None = None,
) -> LintResult:
    """The findings on the ``linted`` revisions among ``recorded`` (oldest first: every
    revision up to the last linted one, whose scratch databases replay the earlier ones;
    with ``seed``, only the linted ones, whose scratch databases start from the live
    database's schema).

    :param lock_timeout: the migration lock timeout (``None``: migrations run without one).
    :param replay_reason: why the earlier revisions are replayed (said in a note).
    :param max_rows: the rows a data statement may touch in one transaction.
    :param at_previous: ``""`` when the database is at the revision before the linted ones
        (its rows are checked against the operations), else where it is, for a note
        (``None``: its revision was not read, and no note).
    """
    backend = url.get_backend_name()
    judgement = _Judgement(recorded, linted, engine, url, lock_timeout)
    judgement.seed = seed
    judgement.replay_reason = replay_reason
    judgement.check_data(backend, max_rows)
    judgement.check_rows(backend, at_previous)
    if judgement.items and backend in MYSQL:
        judgement.check_on_mysql()
    if backend == "postgresql":
        judgement.check_on_postgresql()
    return LintResult(
        dialect=backend,
        revisions=tuple(s.revision for s in chosen),
        findings=tuple(judgement.findings(backend)),
        notes=tuple(judgement.notes),
        online=tuple(judgement.online),
    )


class _Judgement:
    """The judgement of one lint run: its inputs, and what the server checks found (notes,
    findings by operation ``id``, the operations whose type change the server judged)."""

    def __init__(
        self,
        recorded: list[RecordedRevision],
        linted: set[str],
        engine: sa.Engine,
        url: sa.URL,
        lock_timeout: float | None,
    ) -> None:
        self.recorded = recorded
        self.linted = linted
        self.revisions = [r for r in recorded if r.script.revision in linted]
        self.items = [item for revision in self.revisions for item in revision.operations]
        self.engine = engine
        self.url = url
        self.lock_timeout = lock_timeout
        self.notes: list[str] = []
        self.by_operation: dict[int, list[LintFinding]] = {}
        self.judged: set[int] = set()
        """The operations whose type change the server judged (no rule judges them)."""
        self.seed: Seed | None = None
        """Where the scratch databases start from (``None``: a replay of the history)."""
        self.replay_reason = ""
        self.online: list[OnlineVerdict] = []
        """MariaDB: the operations the server runs NOCOPY or INPLACE (a rebuild)."""

    def note_replay(self) -> None:
        """Say in one line that a scratch database replayed the earlier revisions."""
        replays = sum(1 for r in self.recorded if r.script.revision not in self.linted)
        if self.seed is None and replays:
            from flask_entitydb.migrations._lint.scratch import replay_notice

            self.notes.append(replay_notice(replays, self.replay_reason))

    def add(self, item: Recorded, rule: str, detail: str = "") -> None:
        self.by_operation.setdefault(id(item), []).append(_finding(item, rule, detail))

    def check_data(self, backend: str, max_rows: int) -> None:
        """Data statements, by the rows they touch on the app's database."""
        touched, notes = data_findings(self.revisions, self.engine, backend, max_rows)
        for hit in touched:
            self.add(hit.item, "data-migration", hit.detail)
        self.notes += notes

    def check_rows(self, backend: str, at_previous: str | None) -> None:
        """Operations the database's rows make fail, when it is at the revision before."""
        query = at_previous == ""
        failing, candidates = failing_on_data(self.revisions, self.engine, backend, query=query)
        for hit in failing:
            self.add(hit.item, "fails-on-data", hit.detail)
        if candidates and at_previous:
            self.notes.append(
                f"{candidates} operation(s) (unique, NOT NULL, shorter type, foreign key,"
                f" CHECK) were not checked against the rows: the database is {at_previous},"
                " not at the revision before the linted ones"
            )

    def check_on_mysql(self) -> None:
        """Table copies (the server on a scratch database) and, on MariaDB, the operations
        that run NOCOPY or rebuild the table; Galera; the lock timeout."""
        # each backend's judges are imported for that backend only
        from flask_entitydb.migrations._lint.mysql import server_verdicts
        from flask_entitydb.migrations._lint.rebuild import online_verdicts

        self.note_replay()
        verdicts = server_verdicts(self.url, self.recorded, self.linted, self.seed)
        self.judged = {id(item) for item in self.items} - verdicts.failed
        self.notes += verdicts.notes
        for copy in verdicts.copies:
            self.add(copy.item, "mysql-table-copy", copy.reason)
        if verdicts.mariadb:
            self.online = online_verdicts(verdicts.online, self.engine)
        galera = _galera_note(self.engine, self.items)
        if galera is not None:
            self.notes.append(galera)
        if self.lock_timeout is None:
            for item in self.items:
                if _changes_existing_table(item):
                    self.add(item, "no-lock-timeout")

    def check_on_postgresql(self) -> None:
        """Type changes that rewrite (the server on a scratch database), squawk."""
        from flask_entitydb.migrations._lint.postgresql import judged_type_change, type_rewrites
        from flask_entitydb.migrations._lint.squawk import squawk_findings

        if any(judged_type_change(item) for item in self.items):
            self.note_replay()
            rewrites, self.judged, notes = type_rewrites(
                self.url, self.recorded, self.linted, self.seed
            )
            self.notes += notes
            for rewrite in rewrites:
                self.add(rewrite.item, "alter-column-type", rewrite.reason)
        if not self.items:
            return
        version, failure = _server_version(self.engine)
        if failure is not None:
            self.notes.append(f"server version unknown ({failure}); squawk assumed a recent one")
        streams = [revision.stream for revision in self.revisions]
        hits, unparsed = squawk_findings(
            streams, pg_version=version, lock_timeout=self.lock_timeout
        )
        for hit in hits:
            self.add(hit.item, hit.rule, hit.message)
        for item in unparsed:
            self.notes.append(
                f"squawk could not parse {describe(item.operation)}"
                f" ({_where(item)}): it was not checked by squawk"
            )

    def findings(self, backend: str) -> list[LintFinding]:
        """Every finding, revision by revision and operation by operation."""
        found: list[LintFinding] = []
        for revision in self.revisions:
            if revision.error is not None:
                found.append(_unreadable(revision))
            for item in revision.operations:
                rules = check_generic(item, backend, type_change=id(item) not in self.judged)
                found += [_finding(item, rule) for rule in rules]
                found += self.by_operation.get(id(item), [])
        return found


def _changes_existing_table(item: Recorded) -> bool:
    """Whether ``item`` runs DDL on a table that existed before its revision."""
    return not item.new_table and any(s.upper().startswith(_DDL) for s in item.statements)


def _where(item: Recorded) -> str:
    path = os.path.relpath(item.path) if item.path.startswith(os.getcwd()) else item.path
    return f"{path}:{item.line}"


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
        with closed_after(engine) as connection:
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
            if _changes_existing_table(item)
        }
    )
    if not tables:
        return None
    from flask_entitydb.migrations._locks.runlock import galera_status

    try:
        with closed_after(engine) as connection:
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
