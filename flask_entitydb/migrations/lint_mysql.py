"""The MySQL/MariaDB rule of ``flask db lint``, decided by the server itself.

An empty scratch database is built on the app's server from the recorded statements of the
revisions, oldest first. Each ``ALTER TABLE`` / ``CREATE INDEX`` / ``DROP INDEX`` of a
linted revision on a table that existed before it is tried there with
``ALGORITHM=INSTANT``, then with ``ALGORITHM=INPLACE, LOCK=NONE``; when the server refuses
both (errors 1845/1846), the operation would copy the table and block writes. Which
algorithm an operation supports depends on the operation and the server version, not on
the rows, so the empty copy answers for the real table.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ..masking import mask_text
from .lint_record import Recorded, RecordedRevision

_NOT_SUPPORTED = (1845, 1846)
_ONLINE = ("ALGORITHM=INSTANT", "ALGORITHM=INPLACE, LOCK=NONE")


@dataclass(frozen=True)
class CopyFinding:
    """An operation the server would run by copying the table."""

    item: Recorded
    statement: str
    reason: str


def _online_forms(statement: str) -> list[str] | None:
    """The statement with each online algorithm clause, or ``None`` for statements that
    take no algorithm clause."""
    words = statement.split(None, 3)
    head = " ".join(words[:2]).upper()
    if head == "ALTER TABLE":
        return [f"{statement}, {clause}" for clause in _ONLINE]
    if head in ("CREATE INDEX", "DROP INDEX") or " ".join(words[:3]).upper() in (
        "CREATE UNIQUE INDEX",
        "CREATE FULLTEXT INDEX",
    ):
        return [f"{statement} {clause.replace(',', '')}" for clause in _ONLINE]
    return None


def _error_code(error: sa.exc.DBAPIError) -> int | None:
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


@contextmanager
def scratch_database(url: URL) -> Iterator[sa.Engine]:
    """An empty database next to the app's on the same server, dropped afterwards."""
    name = f"{(url.database or 'app')[:40]}_lint_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
        engine = sa.create_engine(url.set(database=name), poolclass=sa.NullPool)
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        admin.dispose()


def copy_findings(
    url: URL, revisions: list[RecordedRevision], linted: set[str]
) -> tuple[list[CopyFinding], list[Recorded], str | None]:
    """Run the recorded statements on a scratch database.

    :returns: the operations of ``linted`` revisions that copy the table, the operations
        the server checked, and a note when the check could not be completed (what failed).
    """
    found: list[CopyFinding] = []
    checked: list[Recorded] = []
    try:
        with scratch_database(url) as engine, engine.connect() as connection:
            for revision in revisions:
                if revision.error is not None:
                    return found, checked, f"revision '{revision.script.revision}' unreadable"
                for item in revision.operations:
                    tries = item.revision in linted and not item.new_table
                    for statement in item.statements:
                        forms = _online_forms(statement) if tries else None
                        if forms is not None:
                            checked.append(item)
                            reason = _try_online(connection, forms)
                            if reason is None:
                                continue  # ran online, and applied
                            found.append(CopyFinding(item, statement, reason))
                        connection.exec_driver_sql(statement.replace("%", "%%"))
                        connection.commit()
    except sa.exc.DBAPIError as error:
        message = mask_text(" ".join(str(error.orig).split()))
        if url.password:
            message = message.replace(str(url.password), "***")
        return found, checked, message
    return found, checked, None


def _try_online(connection: sa.Connection, forms: list[str]) -> str | None:
    """``None`` when one online form ran; else the server's reason for refusing."""
    reason = ""
    for form in forms:
        try:
            connection.exec_driver_sql(form.replace("%", "%%"))
            connection.commit()
            return None
        except sa.exc.DBAPIError as error:
            connection.rollback()
            if _error_code(error) not in _NOT_SUPPORTED:
                raise
            reason = " ".join(str(error.orig.args[1]).split())  # type: ignore[union-attr]
    return reason
