"""The MySQL/MariaDB rule of ``flask db lint``, decided by the server itself.

An empty scratch database is built on the app's server from the recorded statements of the
revisions, oldest first. Each ``ALTER TABLE`` / ``CREATE INDEX`` / ``DROP INDEX`` of a
linted revision on a table that existed before it is tried there with
``ALGORITHM=INSTANT``, then (MariaDB only) ``ALGORITHM=NOCOPY, LOCK=NONE``, then with
``ALGORITHM=INPLACE, LOCK=NONE`` (the forms
:func:`~flask_entitydb.migrations.online_ddl` gives it; only the algorithm of its block
when it runs in one); when the server refuses them all (errors 1845/1846), the operation
would copy the table and block writes (in a block: the upgrade fails). On MariaDB an
operation that runs ``INPLACE`` but not ``NOCOPY`` rebuilds the table in place: writes go
on, but it takes time in proportion to the table's size (:mod:`.rebuild` estimates it).
Which algorithm an operation supports depends on the operation and the server version,
not on the rows, so the empty copy answers for the real table. ``flask db migrate`` judges
new operations the same way (:func:`run_judged`,
:mod:`~flask_entitydb.migrations._autogenerate.online_blocks`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import URL

from flask_entitydb.migrations._lint.memo import Diverged, Replaying, StatementRunner, recorded
from flask_entitydb.migrations._lint.record import Recorded, RecordedRevision
from flask_entitydb.migrations._lint.scratch import Seed, scratch_database, server_message
from flask_entitydb.migrations._server_facts import NOT_SUPPORTED, error_code
from flask_entitydb.migrations.online import ALGORITHMS, algorithms_of, known_to

log = logging.getLogger("flask_entitydb")


@dataclass(frozen=True)
class CopyFinding:
    """An operation the server would run by copying the table (or, with the algorithm of
    its ``online_ddl`` block, refuses to run)."""

    item: Recorded
    statement: str
    reason: str


@dataclass(frozen=True)
class OnlineRun:
    """An operation of a linted revision the server runs online with ``algorithm``."""

    item: Recorded
    algorithm: str


@dataclass
class ServerVerdicts:
    """What the scratch database said about the operations of one lint run."""

    copies: list[CopyFinding] = field(default_factory=list)
    """The operations that copy the table."""
    failed: set[int] = field(default_factory=set)
    """The ``id()`` of the operations the server could not judge."""
    notes: list[str] = field(default_factory=list)
    """What could not be checked."""
    online: list[OnlineRun] = field(default_factory=list)
    """The operations that run online, with the algorithm (every one tried)."""
    mariadb: bool = False
    """The server is MariaDB (``NOCOPY`` was tried)."""


@dataclass(frozen=True)
class Verdict:
    """How the server ran one statement that takes an algorithm clause."""

    statement: str
    algorithm: str | None
    """The strongest algorithm tried that the server accepted; ``None``: it refused all."""
    reason: str = ""
    """The server's reason for refusing the last algorithm tried, when it refused all."""


def weakest(verdicts: list[Verdict]) -> str | None:
    """The strongest algorithm that every statement of an operation can run with."""
    if not verdicts or any(verdict.algorithm is None for verdict in verdicts):
        return None
    return max((verdict.algorithm or "" for verdict in verdicts), key=ALGORITHMS.index)


def run_judged(
    connection: StatementRunner,
    statements: list[str],
    online: dict[str, list[str]],
    algorithms: Sequence[str] = ALGORITHMS,
) -> list[Verdict]:
    """Run an operation's statements on a scratch database, each with the first of
    ``algorithms`` the server accepts (forms from ``online``), else as it is (the server
    copies the table). ``NOCOPY`` is tried on MariaDB only; on MySQL it is ``INPLACE``.

    :returns: one verdict per statement that takes an algorithm clause.
    :raises sqlalchemy.exc.DBAPIError: the server failed otherwise.
    """
    algorithms = list(dict.fromkeys(known_to(a, connection.dialect) for a in algorithms))
    verdicts: list[Verdict] = []
    for index, statement in enumerate(statements):
        forms = [
            (algorithm, online[algorithm][index])
            for algorithm in algorithms
            if len(online.get(algorithm, ())) == len(statements)
            and online[algorithm][index] != statement
        ]
        if forms:
            verdict = _try_online(connection, statement, forms)
            verdicts.append(verdict)
            if verdict.algorithm is not None:
                continue  # ran online, and applied
        _run(connection, statement)
    return verdicts


def _run(connection: StatementRunner, statement: str) -> None:
    connection.exec_driver_sql(statement.replace("%", "%%"))
    connection.commit()


def server_verdicts(
    url: URL,
    revisions: list[RecordedRevision],
    linted: set[str],
    seed: Seed | None = None,
) -> ServerVerdicts:
    """Run the recorded statements on a scratch database (started from ``seed``; the
    revisions not in ``linted`` are replayed).

    A revision that could not be read contributes the operations recorded before the
    error; an operation whose statements then fail on the scratch database (its table or
    column came from the part that was not read) is not judged, and the others are.
    """
    replays = sum(1 for r in revisions if r.script.revision not in linted)
    record = recorded(url, seed.tables) if seed is not None and not replays else None
    if record is not None:  # migrate just ran these statements on the same tables
        try:
            return _verdicts(Replaying(record), revisions, linted, url)
        except Diverged as statement:
            log.debug("scratch database: no recorded verdict for %s", statement)
    try:
        with (
            scratch_database(url, seed, replays=replays) as engine,
            engine.connect() as connection,
        ):
            return _verdicts(connection, revisions, linted, url)
    except sa.exc.DBAPIError as error:
        found = ServerVerdicts()
        note = (
            f"the server check stopped ({server_message(error, url)}); 'alter-column-type'"
            " is judged by rule instead"
        )
        found.failed = {id(i) for r in revisions for i in r.operations}
        found.notes = [note]
        return found


def _verdicts(
    connection: StatementRunner, revisions: list[RecordedRevision], linted: set[str], url: URL
) -> ServerVerdicts:
    found = ServerVerdicts()
    found.mariadb = bool(getattr(connection.dialect, "is_mariadb", False))
    for revision in revisions:
        for item in revision.operations:
            try:
                _judged(connection, item, linted, found)
            except sa.exc.DBAPIError as error:
                connection.rollback()
                found.failed.add(id(item))
                if item.revision in linted:
                    found.notes.append(_not_judged(item, server_message(error, url)))
    return found


def _not_judged(item: Recorded, message: str) -> str:
    return (
        f"the server could not try revision '{item.revision}' line {item.line} on the"
        f" scratch database ({message}); it is judged by rule"
    )


def _judged(
    connection: StatementRunner, item: Recorded, linted: set[str], found: ServerVerdicts
) -> None:
    """Run one operation on the scratch database; when it is linted, add to ``found``
    whether it copies its table, else the algorithm it runs with."""
    if item.revision not in linted or item.new_table or not item.online:
        for statement in item.statements:
            _run(connection, statement)
        return
    wanted = [item.algorithm] if item.algorithm else algorithms_of(connection.dialect)
    verdicts = run_judged(connection, item.statements, item.online, wanted)
    for verdict in verdicts:
        if verdict.algorithm is None:
            reason = verdict.reason
            if item.algorithm:
                reason = (
                    f"the revision's online_ddl(op, '{item.algorithm}') is"
                    f" refused, so the upgrade fails: {reason}"
                )
            found.copies.append(CopyFinding(item, verdict.statement, reason))
    algorithm = weakest(verdicts)
    if algorithm is not None:
        found.online.append(OnlineRun(item, algorithm))


def _try_online(
    connection: StatementRunner, statement: str, forms: list[tuple[str, str]]
) -> Verdict:
    reason = ""
    for algorithm, form in forms:
        try:
            _run(connection, form)
            return Verdict(statement, algorithm)
        except sa.exc.DBAPIError as error:
            connection.rollback()
            if error_code(error) not in NOT_SUPPORTED:
                raise
            reason = " ".join(str(error.orig.args[1]).split())  # type: ignore[union-attr]
    return Verdict(statement, None, reason)
