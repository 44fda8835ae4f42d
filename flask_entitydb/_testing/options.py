"""The plugin's settings as this process sees them: the test database URL, the schema
mode, and which xdist worker this process is."""

from __future__ import annotations

import os
from typing import Literal

import pytest

URL_ENV = "ENTITYDB_TEST_URL"
"""Environment variable naming the test database (``--entitydb-url`` wins over it)."""

URL_SOURCE = f"--entitydb-url / {URL_ENV}"
"""How messages name the test database setting."""

BIND_URL_ENV_PREFIX = f"{URL_ENV}_"
"""``ENTITYDB_TEST_URL_<KEY>`` names the test database of bind ``<key>``."""

SchemaMode = Literal["migrations", "create_all"]
SCHEMA_MODES: tuple[SchemaMode, ...] = ("migrations", "create_all")


def url_option(config: pytest.Config) -> str | None:
    """The test database URL given by ``--entitydb-url`` or :data:`URL_ENV`, if any."""
    return config.getoption("entitydb_url") or os.environ.get(URL_ENV)


def bind_url_env(key: str) -> str:
    """The environment variable naming bind ``key``'s test database."""
    return f"{BIND_URL_ENV_PREFIX}{key.upper()}"


def bind_url_source(key: str) -> str:
    """How messages name the test database setting of bind ``key``."""
    return f"--entitydb-bind-url {key}=... / {bind_url_env(key)}"


def bind_url_option(config: pytest.Config, key: str) -> str | None:
    """The test database URL of bind ``key`` (``--entitydb-bind-url KEY=URL``, else
    ``ENTITYDB_TEST_URL_<KEY>``), if any.

    :raises pytest.UsageError: an option value without ``=``.
    """
    values: list[str] = config.getoption("entitydb_bind_urls") or []
    for value in values:
        name, equals, url = value.partition("=")
        if not equals or not name or "://" in name:
            raise pytest.UsageError(
                "--entitydb-bind-url takes KEY=URL, the bind key first (for example"
                " stats=postgresql+psycopg://app@db/stats_test); a value has no 'KEY='."
            )
        if name == key:
            return str(url)
    return os.environ.get(bind_url_env(key))


def schema_mode(config: pytest.Config) -> SchemaMode:
    """``--entitydb-schema``, else the ``entitydb_schema`` ini setting; a usage error when
    invalid."""
    value = config.getoption("entitydb_schema") or config.getini("entitydb_schema")
    if value not in SCHEMA_MODES:
        raise pytest.UsageError(f"entitydb_schema is '{value}'; use 'migrations' or 'create_all'.")
    return value  # type: ignore[no-any-return]


def worker_id(config: pytest.Config) -> str | None:
    """The xdist worker id (``gw0``, ...) of this process, or ``None`` outside xdist."""
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else None
