"""``ENTITYDB_LIVENESS`` and ``ENTITYDB_LIVENESS_PING_IDLE``: reading them, and deciding the
policy of each database once (:mod:`flask_entitydb._engine.liveness` applies it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy.engine import URL

from flask_entitydb._settings.masking import mask_url
from flask_entitydb.errors import ConfigurationError

LivenessPolicy = Literal["retry", "ping", "none"]
LIVENESS_POLICIES: tuple[LivenessPolicy, ...] = ("retry", "ping", "none")
SERVER_BACKENDS = frozenset({"mysql", "mariadb", "postgresql"})
"""Backends whose connections a server can close; others (SQLite) get ``"none"``."""

DEFAULT_PING_IDLE = 60.0
"""Seconds of idleness after which ``"retry"`` pings a connection at checkout (see
``benchmarks/README.md``: the check costs a clock read per checkout, the ping one round
trip, paid only by a request after a minute without any)."""


def read_liveness(config: Mapping[str, Any]) -> tuple[LivenessPolicy | None, float | None]:
    """Read ``ENTITYDB_LIVENESS`` (``None`` when not set: each database gets its
    backend's default) and ``ENTITYDB_LIVENESS_PING_IDLE`` (``None``: never ping).

    :raises ConfigurationError: an unknown policy or a bad number of seconds.
    """
    policy: LivenessPolicy | None = config.get("ENTITYDB_LIVENESS")
    if policy is not None and policy not in LIVENESS_POLICIES:
        raise ConfigurationError(
            f"'ENTITYDB_LIVENESS' is {policy!r}; use 'retry', 'ping' or 'none'."
        )
    idle = config.get("ENTITYDB_LIVENESS_PING_IDLE", DEFAULT_PING_IDLE)
    if idle is not None and (
        isinstance(idle, bool) or not isinstance(idle, (int, float)) or idle < 0
    ):
        raise ConfigurationError(
            f"'ENTITYDB_LIVENESS_PING_IDLE' is {idle!r}; use a number of seconds (0 or"
            " more), or None to never ping."
        )
    return policy, None if idle is None else float(idle)


def database_liveness(
    configured: LivenessPolicy | None, url: URL, engine_options: Mapping[str, Any]
) -> LivenessPolicy:
    """The policy of one database (the default one, a bind or a replica).

    :param configured: ``ENTITYDB_LIVENESS``, or ``None`` for the backend's default:
        ``"retry"`` on MySQL/MariaDB and PostgreSQL, ``"none"`` elsewhere (SQLite); an
        explicit ``pool_pre_ping=True`` in ``engine_options`` makes the default ``"ping"``.
    :raises ConfigurationError: the policy contradicts an explicit ``pool_pre_ping``.
    """
    pre_ping = engine_options.get("pool_pre_ping")
    if pre_ping is not None and not isinstance(pre_ping, bool):
        # engine_from_config coerces strings the same way
        pre_ping = str(pre_ping).strip().lower() in {"true", "1", "yes", "on"}
    if url.get_backend_name() not in SERVER_BACKENDS:
        return configured or "none"
    if configured is None:
        return "ping" if pre_ping is True else "retry"
    if (configured == "ping" and pre_ping is False) or (configured == "none" and pre_ping):
        raise ConfigurationError(
            f"'ENTITYDB_LIVENESS' is {configured!r} but the engine options of"
            f" '{mask_url(url)}' set 'pool_pre_ping': {pre_ping}; remove one of them."
        )
    return configured
