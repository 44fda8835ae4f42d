"""The exceptions flask-entitydb raises for problems a user can fix."""

from __future__ import annotations

import click


class EntityDBError(click.ClickException):
    """Base class of every error flask-entitydb raises on purpose.

    The message is one sentence that says what was wrong and how to fix it, and never
    contains a password.

    It is a :class:`click.ClickException`, so when it escapes from an app factory or a
    command under the ``flask`` CLI, click prints ``Error: <message>`` on stderr and exits
    with status 1 instead of showing a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ConfigurationError(EntityDBError, ValueError):
    """A configuration value (``DB_CONNECTION_STRING``, an ``ENTITYDB_*`` key or a
    constructor option) is invalid, or a driver it needs is not installed."""


class EntityDiscoveryError(EntityDBError):
    """An entity package or ``*_entity.py`` module could not be found or imported, or two
    entity modules define the same table."""


class MigrationError(EntityDBError):
    """A ``flask db`` operation failed for a reason the user can act on."""


class LockTimeoutError(MigrationError):
    """The database-level migration lock could not be taken in time."""


class LockLostError(MigrationError):
    """The migration lock was lost while migrating (its connection was dropped, or the
    lease was taken over); the run stopped before the next revision."""


class ReplicaWriteError(EntityDBError):
    """A statement that writes reached a read replica, whose session is read-only, where
    it could not be sent to the primary instead; run it inside ``db.primary()``."""
