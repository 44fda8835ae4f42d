"""The config keys flask-entitydb reads, and the check that a misspelled one is no silent
default: an ``ENTITYDB_`` key none of them is, or a near miss of ``DB_CONNECTION_STRING``
(in the app config, or in the environment when the real one is not set), is an error at
``init_app``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from flask_entitydb.errors import ConfigurationError

URL_KEY = "DB_CONNECTION_STRING"

KNOWN_KEYS = frozenset(
    {
        "ENTITYDB_BINDS",
        "ENTITYDB_COMPARE_SERVER_DEFAULT",
        "ENTITYDB_COMPARE_TYPE",
        "ENTITYDB_DATABASE_AHEAD",
        "ENTITYDB_ENGINE_OPTIONS",
        "ENTITYDB_ENTITY_PACKAGES",
        "ENTITYDB_ENTRY_POINTS",
        "ENTITYDB_EXCLUDE_TABLES",
        "ENTITYDB_LINT_MAX_ROWS",
        "ENTITYDB_LIVENESS",
        "ENTITYDB_LIVENESS_PING_IDLE",
        "ENTITYDB_MIGRATIONS_DIR",
        "ENTITYDB_MIGRATION_JOURNAL_TABLE",
        "ENTITYDB_MIGRATION_LEASE_SECONDS",
        "ENTITYDB_MIGRATION_LOCK",
        "ENTITYDB_MIGRATION_LOCK_TIMEOUT",
        "ENTITYDB_MODEL_MODULES",
        "ENTITYDB_PENDING_MIGRATIONS",
        "ENTITYDB_REPLICAS",
        "ENTITYDB_REPLICA_MAX_LAG",
        "ENTITYDB_REPLICA_STICKY_SECONDS",
        "ENTITYDB_SQLITE_FILE",
    }
)
"""Every ``ENTITYDB_`` key of the app config (docs/configuration.md lists each)."""


def _near_url_key(names: Iterable[str]) -> str | None:
    """A name that looks like a misspelled ``DB_CONNECTION_STRING`` (not a bind's
    ``DB_CONNECTION_STRING_<KEY>``)."""
    for name in names:
        if name.startswith(URL_KEY):
            continue
        if difflib.SequenceMatcher(None, name.upper(), URL_KEY).ratio() >= 0.9:
            return name
    return None


def did_you_mean(name: str, choices: Iterable[str], *, cutoff: float) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_config_keys(config: Mapping[str, object]) -> None:
    """Raise :class:`ConfigurationError` for an ``ENTITYDB_`` key flask-entitydb does not
    read, or a near miss of ``DB_CONNECTION_STRING`` while that key is not set."""
    for key in config:
        if key.startswith("ENTITYDB_") and key not in KNOWN_KEYS:
            hint = did_you_mean(key, sorted(KNOWN_KEYS), cutoff=0.8)
            raise ConfigurationError(
                f"The app config sets '{key}', which flask-entitydb does not read{hint};"
                " fix its name or remove it (docs/configuration.md lists the keys)."
            )
    if URL_KEY not in config:
        near = _near_url_key(config)
        if near is not None:
            raise ConfigurationError(
                f"The app config sets '{near}', not '{URL_KEY}' (a typo?); rename it, or"
                " the app would use another database."
            )


def check_environment(environ: Mapping[str, str]) -> None:
    """With ``DB_CONNECTION_STRING`` set nowhere: raise for an environment variable whose
    name is a near miss of it, instead of falling back to the SQLite default."""
    near = _near_url_key(environ)
    if near is not None:
        raise ConfigurationError(
            f"The environment sets '{near}', not '{URL_KEY}' (a typo?); rename it, or the"
            " app would use the embedded SQLite database instead."
        )
