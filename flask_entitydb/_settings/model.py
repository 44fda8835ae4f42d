"""The frozen settings of one app: :class:`Settings`, with a :class:`BindSettings` per bind
and a :class:`DatabaseSettings` per database server (primaries and read replicas)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from sqlalchemy.engine import URL

from flask_entitydb._settings.liveness import DEFAULT_PING_IDLE, LivenessPolicy

PendingPolicy = Literal["ignore", "warn", "error"]
PENDING_POLICIES: tuple[PendingPolicy, ...] = ("ignore", "warn", "error")
AheadPolicy = Literal["warn", "error"]
MigrationLockMode = Literal["auto", "lease"]
LOCK_MODES: tuple[MigrationLockMode, ...] = ("auto", "lease")


SQLITE_DEFAULT_SOURCE = "the SQLite default"
"""The ``url_source`` of the embedded SQLite default (``DB_CONNECTION_STRING`` not set)."""


def describe_database(url: str, source: str, path: str | None) -> str:
    """A database as ``flask db`` names it: its (masked) URL and where it came from; for
    the SQLite default, its file and that ``DB_CONNECTION_STRING`` is not set."""
    if source == SQLITE_DEFAULT_SOURCE:
        return f"the SQLite file {path} (DB_CONNECTION_STRING is not set)"
    return f"{url} ({source})"


@dataclass(frozen=True)
class DatabaseSettings:
    """One database server the app connects to: a bind's primary or one of its read
    replicas, prepared like ``DB_CONNECTION_STRING`` is."""

    url: URL
    """The URL handed to SQLAlchemy (``ssl`` translated, dialect defaults applied)."""
    url_source: str
    """Where the URL came from, named in messages."""
    engine_options: Mapping[str, Any]
    require_tls: bool
    liveness: LivenessPolicy
    """Its ``ENTITYDB_LIVENESS`` policy, decided for its backend and engine options."""
    shown_url: str = ""
    """The URL as configured (``ssl=true`` and all), password masked, for messages."""


@dataclass(frozen=True)
class BindSettings:
    """One bind (database) of the app: its primary and its read replicas."""

    key: str | None
    """The bind key (``None``: the default database)."""
    primary: DatabaseSettings
    replicas: tuple[DatabaseSettings, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Everything flask-entitydb reads from one app's configuration.

    ``url``, ``url_source``, ``engine_options``, ``require_tls`` and ``liveness`` are the
    default database's; :meth:`bind` gives any bind's, replicas included.
    """

    url: URL
    """The URL handed to SQLAlchemy (``ssl`` translated, dialect defaults applied)."""
    url_source: str
    """Where the URL came from, named in messages (for example ``DB_CONNECTION_STRING``)."""
    engine_options: Mapping[str, Any]
    require_tls: bool
    liveness: LivenessPolicy
    """The ``ENTITYDB_LIVENESS`` policy of the default database."""
    entity_packages: tuple[str, ...] | None
    entry_points: tuple[str, ...] | None
    migrations_dir: str
    exclude_tables: tuple[str, ...]
    pending_migrations: PendingPolicy
    replicas: tuple[DatabaseSettings, ...] = ()
    """Read replicas of the default database."""
    binds: Mapping[str, BindSettings] = field(default_factory=lambda: MappingProxyType({}))
    """The other databases, by bind key."""
    replica_sticky_seconds: float = 2.0
    replica_max_lag: float | None = None
    liveness_setting: LivenessPolicy | None = None
    """``ENTITYDB_LIVENESS`` as configured (``None``: each backend's default)."""
    liveness_ping_idle: float | None = DEFAULT_PING_IDLE
    """``ENTITYDB_LIVENESS_PING_IDLE`` (seconds, ``None``: never)."""
    migration_lock_timeout: float | None = 1.0
    """Seconds migrations' DDL waits for a table lock; ``None``: no limit."""
    lint_max_rows: int = 10_000
    """``ENTITYDB_LINT_MAX_ROWS``: the rows a data statement may touch in one migration
    transaction before ``flask db lint`` flags it."""
    model_modules: tuple[str, ...] = ()
    """With ``EntityDB(flask_sqlalchemy_models=True)``, the modules to import for the
    models (``ENTITYDB_MODEL_MODULES``, default the app's ``models``); else empty."""
    shown_url: str = ""
    """The default database's URL as configured, password masked, for messages."""

    def bind(self, key: str | None) -> BindSettings:
        """The settings of bind ``key`` (``None``: the default database).

        :raises KeyError: no such bind.
        """
        if key is None:
            primary = DatabaseSettings(
                self.url,
                self.url_source,
                self.engine_options,
                self.require_tls,
                self.liveness,
                shown_url=self.shown_url,
            )
            return BindSettings(None, primary, self.replicas)
        return self.binds[key]

    def liveness_of(self, database: DatabaseSettings) -> LivenessPolicy:
        """The ``ENTITYDB_LIVENESS`` policy of one database (a bind's primary or replica)."""
        return database.liveness

    @property
    def bind_keys(self) -> tuple[str | None, ...]:
        """``None`` (the default database) and every other bind's key, in order."""
        return (None, *self.binds)

    @property
    def has_replicas(self) -> bool:
        """Whether any bind has a read replica."""
        return bool(self.replicas) or any(b.replicas for b in self.binds.values())

    database_ahead: AheadPolicy = "warn"
    """``ENTITYDB_DATABASE_AHEAD``: serve (``"warn"``) or refuse (``"error"``) when the
    database's revision is newer than the code's migrations."""
    migration_lock: MigrationLockMode = "auto"
    """``ENTITYDB_MIGRATION_LOCK``: ``"auto"`` (chosen per server) or ``"lease"``."""
    migration_lease_seconds: float = 15.0
    """``ENTITYDB_MIGRATION_LEASE_SECONDS``: a lease not renewed this long is taken over."""
    migration_journal_table: str = "flask_entitydb_journal"
    """``ENTITYDB_MIGRATION_JOURNAL_TABLE``: the table recording each revision's progress."""
    compare_type: bool = True
    """``ENTITYDB_COMPARE_TYPE``: autogenerate compares column types."""
    compare_server_default: bool = True
    """``ENTITYDB_COMPARE_SERVER_DEFAULT``: autogenerate compares server defaults."""
