"""The server's answers on one scratch database, kept for the lint of the revision that
``flask db migrate`` has just written (MySQL/MariaDB).

``migrate`` judges its new operations on a scratch database started from the live
tables they touch (:mod:`~flask_entitydb.migrations._autogenerate.online_blocks`); the
lint of the written revision would build the same database again and run the same
statements. Inside :func:`verdicts_kept`, migrate's scratch session is recorded: the
outcome (done, or the server's error) of every statement, keyed by the statements that
succeeded before it (a refused statement changes nothing). The lint then asks the record
instead of a new scratch database, as long as it starts from the same live tables and
runs statements the record answers; at the first statement it does not answer
(:class:`Diverged`), the lint builds its own scratch database as before. So the verdicts
are the server's own, for the same statements on the same schema.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa


class StatementRunner(Protocol):
    """What the server checks use of a scratch database connection."""

    @property
    def dialect(self) -> Any:
        """The server's dialect (``is_mariadb``)."""

    def exec_driver_sql(self, statement: str) -> object:
        """Run one statement."""

    def commit(self) -> None:
        """Commit."""

    def rollback(self) -> None:
        """Roll back."""


class Diverged(Exception):
    """The record does not answer a statement: judge on a scratch database instead."""


@dataclass
class ScratchRecord:
    """The outcome of each statement run on one scratch database started from ``tables``
    of the live database of ``url`` (``None``: an error, the server's)."""

    url: sa.URL
    tables: frozenset[str]
    dialect: Any
    outcomes: dict[tuple[tuple[str, ...], str], sa.exc.DBAPIError | None] = field(
        default_factory=dict
    )


class Recording:
    """A scratch database connection whose statements' outcomes go into ``record``."""

    def __init__(self, connection: sa.Connection, record: ScratchRecord) -> None:
        self._connection = connection
        self._record = record
        self._done: tuple[str, ...] = ()

    @property
    def dialect(self) -> Any:
        """The scratch connection's dialect."""
        return self._connection.dialect

    def exec_driver_sql(self, statement: str) -> object:
        """Run ``statement`` and keep its outcome."""
        key = (self._done, statement)
        try:
            result = self._connection.exec_driver_sql(statement)
        except sa.exc.DBAPIError as error:
            self._record.outcomes[key] = error
            raise
        self._record.outcomes[key] = None
        self._done = (*self._done, statement)
        return result

    def commit(self) -> None:
        """Commit on the scratch database."""
        self._connection.commit()

    def rollback(self) -> None:
        """Roll back on the scratch database."""
        self._connection.rollback()


class Replaying:
    """Answers from ``record`` instead of a scratch database; :class:`Diverged` for a
    statement it has no answer for."""

    def __init__(self, record: ScratchRecord) -> None:
        self._record = record
        self._done: tuple[str, ...] = ()

    @property
    def dialect(self) -> Any:
        """The dialect of the recorded scratch connection."""
        return self._record.dialect

    def exec_driver_sql(self, statement: str) -> object:
        """The recorded outcome of ``statement`` after the statements run so far."""
        key = (self._done, statement)
        if key not in self._record.outcomes:
            raise Diverged(statement)
        error = self._record.outcomes[key]
        if error is not None:
            raise error
        self._done = (*self._done, statement)
        return None

    def commit(self) -> None:
        """Nothing to commit."""

    def rollback(self) -> None:
        """Nothing to roll back."""


_kept: ContextVar[list[ScratchRecord] | None] = ContextVar(
    "flask_entitydb_scratch_records", default=None
)


@contextlib.contextmanager
def verdicts_kept() -> Iterator[None]:
    """Inside the block, scratch sessions started from live tables are recorded and
    answer later checks of the same statements on the same tables (one command: the
    database must not change in the block)."""
    token = _kept.set([])
    try:
        yield
    finally:
        _kept.reset(token)


def recorder(url: sa.URL, tables: frozenset[str] | None) -> ScratchRecord | None:
    """A new record for a scratch session (kept only inside :func:`verdicts_kept`, and
    only when the tables it starts from are known). The caller calls :func:`keep` once
    the session finished as a whole."""
    if _kept.get() is None or tables is None:
        return None
    return ScratchRecord(url, tables, None)


def keep(record: ScratchRecord | None, dialect: Any) -> None:
    """Keep ``record`` for the checks after it in the block."""
    kept = _kept.get()
    if record is not None and kept is not None:
        record.dialect = dialect
        kept.append(record)


def recorded(url: sa.URL, tables: frozenset[str] | None) -> ScratchRecord | None:
    """The newest kept record of a session started from the same ``tables`` of ``url``."""
    for record in reversed(_kept.get() or []):
        if tables is not None and record.url == url and record.tables == tables:
            return record
    return None
