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

SchemaMode = Literal["migrations", "create_all"]
SCHEMA_MODES: tuple[SchemaMode, ...] = ("migrations", "create_all")


def url_option(config: pytest.Config) -> str | None:
    """The test database URL given by ``--entitydb-url`` or :data:`URL_ENV`, if any."""
    return config.getoption("entitydb_url") or os.environ.get(URL_ENV)


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
