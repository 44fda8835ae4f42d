"""The MySQL/MariaDB rule of ``flask db lint``, decided by the server itself.

An empty scratch database is built on the app's server from the recorded statements of the
revisions, oldest first. Each ``ALTER TABLE`` / ``CREATE INDEX`` / ``DROP INDEX`` of a
linted revision on a table that existed before it is tried there with
``ALGORITHM=INSTANT``, then with ``ALGORITHM=INPLACE, LOCK=NONE`` (the forms
:func:`~flask_entitydb.migrations.online_ddl` gives it; only the algorithm of its block
when it runs in one); when the server refuses both (errors 1845/1846), the operation would
copy the table and block writes (in a block: the upgrade fails). Which algorithm an
operation supports depends on the operation and the server version, not on the rows, so
the empty copy answers for the real table. ``flask db migrate`` judges new operations the
same way (:func:`run_judged`, :mod:`~flask_entitydb.migrations._autogenerate.online_blocks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import URL

from flask_entitydb.migrations._lint.record import Recorded, RecordedRevision
from flask_entitydb.migrations._lint.scratch import Seed, scratch_database, server_message
from flask_entitydb.migrations._server_facts import NOT_SUPPORTED, error_code
from flask_entitydb.migrations.online import ALGORITHMS


@dataclass(frozen=True)
class CopyFinding:
    """An operation the server would run by copying the table (or, with the algorithm of
    its ``online_ddl`` block, refuses to run)."""

    item: Recorded
    statement: str
    reason: str


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
    connection: sa.Connection,
    statements: list[str],
    online: dict[str, list[str]],
    algorithms: Sequence[str] = ALGORITHMS,
) -> list[Verdict]:
    """Run an operation's statements on a scratch database, each with the first of
    ``algorithms`` the server accepts (forms from ``online``), else as it is (the server
    copies the table).

    :returns: one verdict per statement that takes an algorithm clause.
    :raises sqlalchemy.exc.DBAPIError: the server failed otherwise.
    """
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


def _run(connection: sa.Connection, statement: str) -> None:
    connection.exec_driver_sql(statement.replace("%", "%%"))
    connection.commit()


def copy_findings(
    url: URL, revisions: list[RecordedRevision], linted: set[str], seed: Seed | None = None
) -> tuple[list[CopyFinding], set[int], list[str]]:
    """Run the recorded statements on a scratch database (started from ``seed``; the
    revisions not in ``linted`` are replayed).

    A revision that could not be read contributes the operations recorded before the
    error; an operation whose statements then fail on the scratch database (its table or
    column came from the part that was not read) is not judged, and the others are.

    :returns: the operations of ``linted`` revisions that copy the table, the ``id()`` of
        the operations the server could not judge, and notes on what could not be checked.
    """
    found: list[CopyFinding] = []
    failed: set[int] = set()
    notes: list[str] = []
    try:
        replays = sum(1 for r in revisions if r.script.revision not in linted)
        with (
            scratch_database(url, seed, replays=replays) as engine,
            engine.connect() as connection,
        ):
            for revision in revisions:
                for item in revision.operations:
                    try:
                        found += _judged(connection, item, linted)
                    except sa.exc.DBAPIError as error:
                        connection.rollback()
                        failed.add(id(item))
                        if item.revision in linted:
                            notes.append(_not_judged(item, server_message(error, url)))
    except sa.exc.DBAPIError as error:
        note = (
            f"the server check stopped ({server_message(error, url)}); 'alter-column-type'"
            " is judged by rule instead"
        )
        return found, {id(i) for r in revisions for i in r.operations}, [note]
    return found, failed, notes


def _not_judged(item: Recorded, message: str) -> str:
    return (
        f"the server could not try revision '{item.revision}' line {item.line} on the"
        f" scratch database ({message}); it is judged by rule"
    )


def _judged(connection: sa.Connection, item: Recorded, linted: set[str]) -> list[CopyFinding]:
    """Run one operation on the scratch database; its table copies when it is linted."""
    if item.revision not in linted or item.new_table or not item.online:
        for statement in item.statements:
            _run(connection, statement)
        return []
    found: list[CopyFinding] = []
    wanted = [item.algorithm] if item.algorithm else ALGORITHMS
    for verdict in run_judged(connection, item.statements, item.online, wanted):
        if verdict.algorithm is None:
            reason = verdict.reason
            if item.algorithm:
                reason = (
                    f"the revision's online_ddl(op, '{item.algorithm}') is"
                    f" refused, so the upgrade fails: {reason}"
                )
            found.append(CopyFinding(item, verdict.statement, reason))
    return found


def _try_online(connection: sa.Connection, statement: str, forms: list[tuple[str, str]]) -> Verdict:
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
