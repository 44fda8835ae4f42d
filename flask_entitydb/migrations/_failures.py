"""Turning the errors of Alembic, SQLAlchemy and drivers into one-line messages."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from flask_entitydb._engine.listeners import connect_error_hint
from flask_entitydb._settings.masking import mask
from flask_entitydb.errors import EntityDBError, MigrationError


def one_line(error: BaseException) -> str:
    """The first line of an error's message (a driver's own message for database errors),
    with any password masked."""
    if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
        text = str(error.orig)
    else:
        text = str(error)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    return mask(first).rstrip(".")


def database_error(
    error: sa.exc.DBAPIError, url: sa.URL, source: str, shown: str = ""
) -> MigrationError:
    """A :class:`MigrationError` for a database error outside of any revision.

    :param shown: the URL as configured, masked (else ``url``, as prepared, is named).
    """
    where = f"'{shown or mask(url)}' ({source})"
    if error.statement is None or isinstance(error, sa.exc.InterfaceError):
        reason = one_line(error)
        return MigrationError(
            f"Cannot connect to the database {where}: {reason}; {connect_error_hint(reason, url)}."
        )
    return MigrationError(f"The database {where} reported an error: {one_line(error)}.")


def command_error(error: Exception) -> MigrationError:
    """A :class:`MigrationError` for Alembic's ``CommandError`` and revision errors (an
    unknown revision id, multiple heads, ...)."""
    message = one_line(error)
    if "Can't locate revision" in message or "No such revision" in message:
        message += "; 'flask db history' lists the revisions"
    elif "multiple head" in message.lower():
        message += "; name one, use 'heads', or join them with 'flask db merge'"
    return MigrationError(message + ("" if message.endswith(".") else "."))


class _OwnConnectionFailures(logging.Filter):
    """Drops the engine's "cannot connect" log record in the thread that is about to
    raise a :class:`MigrationError` saying the same, so the CLI prints one line."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.thread == self.thread and record.funcName == "_log_connection_failure")


@contextlib.contextmanager
def filtered(logger_name: str, log_filter: logging.Filter) -> Iterator[None]:
    """While the block runs, the logger ``logger_name`` passes its records through
    ``log_filter``."""
    logger = logging.getLogger(logger_name)
    logger.addFilter(log_filter)
    try:
        yield
    finally:
        logger.removeFilter(log_filter)


def reported_here() -> contextlib.AbstractContextManager[None]:
    """While the block runs, connection failures of this thread are reported by the
    error it raises, not logged a second time."""
    return filtered("flask_entitydb", _OwnConnectionFailures())


@contextlib.contextmanager
def translated(url: sa.URL, source: str, shown: str = "") -> Iterator[None]:
    """Re-raise expected failures as :class:`MigrationError` with one clear line (naming
    the database as ``shown``: the URL as configured, masked)."""
    try:
        with reported_here():
            yield
    except EntityDBError:
        raise
    except (CommandError, RevisionError) as error:
        raise command_error(error) from error
    except sa.exc.DBAPIError as error:
        raise database_error(error, url, source, shown) from error


def version_table_state(migration: MigrationContext) -> str:
    """What the version table holds now, read from the database, in words (for example
    ``the version table is at 'c81bac34faab'``), after a revision failed."""
    connection = migration.connection
    try:
        if connection is not None and connection.in_transaction():
            connection.rollback()
        heads = migration.get_current_heads()
    except Exception as error:  # the connection itself failed: say so, guess nothing
        return f"the version table could not be read ({one_line(error)})"
    finally:
        if connection is not None and not connection.closed and connection.in_transaction():
            connection.rollback()
    if not heads:
        return "the version table is empty (no revision applied)"
    at = ", ".join(f"'{head}'" for head in sorted(heads))
    return f"the version table is at {at}"
