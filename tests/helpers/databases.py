"""The shared MySQL/PostgreSQL test servers (``ENTITYDB_TEST_MYSQL_URL`` /
``ENTITYDB_TEST_POSTGRESQL_URL``) and fresh databases on them.

A missing server or tool skips the test, or fails it under ``ENTITYDB_TEST_REQUIRE_SERVERS=1``
(set by ``.ci/run``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa

SERVER_ENV = {
    "mysql": "ENTITYDB_TEST_MYSQL_URL",
    "postgresql": "ENTITYDB_TEST_POSTGRESQL_URL",
}


def unavailable(message: str, *, why_required: str = "") -> NoReturn:
    """Skip the test for want of ``message``, or fail it when CI requires the servers."""
    if os.environ.get("ENTITYDB_TEST_REQUIRE_SERVERS") == "1":
        pytest.fail(message + why_required)
    pytest.skip(message)


def require_tool(path: str | None, what: str) -> str:
    """``path`` if it is an executable, else skip (fail under CI): ``what`` is missing."""
    if path and os.access(path, os.X_OK):
        return path
    unavailable(
        f"{what} is not installed; the reliability suite starts private servers with it",
        why_required=" (ENTITYDB_TEST_REQUIRE_SERVERS=1)",
    )


def server_url(backend: str) -> sa.URL:
    """The configured server URL for ``backend``, or skip (fail under CI) if unset."""
    env = SERVER_ENV[backend]
    raw = os.environ.get(env)
    if not raw:
        unavailable(
            f"{env} is not set; {backend} tests need a running server",
            why_required=" (ENTITYDB_TEST_REQUIRE_SERVERS=1)",
        )
    return sa.make_url(raw)


def admin_engine(url: sa.URL | str) -> sa.Engine:
    """An AUTOCOMMIT, unpooled engine (CREATE/DROP DATABASE, server settings)."""
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def create_database(backend: str, tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """Create a fresh, empty database; return its URL and a function that drops it."""
    if backend == "sqlite":
        path = tmp_path / f"test-{uuid.uuid4().hex[:8]}.sqlite3"
        return f"sqlite:///{path}", lambda: None
    base = server_url(backend)
    name = f"edb_{uuid.uuid4().hex[:12]}"
    engine = admin_engine(base)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        unavailable(f"cannot reach the {backend} test server: {exc.orig}")

    def drop() -> None:
        force = " WITH (FORCE)" if backend == "postgresql" else ""
        with engine.connect() as conn:
            # and the schema templates and worker databases the pytest plugin kept for it
            # (<name>_tpl_<hash>, <name>_kept_<worker>)
            for made in [name, *_templates_of(conn, name)]:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {made}{force}"))
        engine.dispose()

    url = base.set(database=name)
    return url.render_as_string(hide_password=False), drop


def _templates_of(conn: sa.Connection, name: str) -> list[str]:
    """The pytest plugin's schema templates and kept worker databases made for the
    database ``name`` (and its binds')."""
    if conn.dialect.name == "postgresql":
        sql = "SELECT datname FROM pg_database WHERE datname LIKE :pattern"
    else:
        sql = "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :pattern"
    pattern = name.replace("_", "\\_") + "\\_%"
    found = [str(found) for found in conn.scalars(sa.text(sql), {"pattern": pattern})]
    return [made for made in found if "_tpl_" in made or "_kept_" in made]


def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """Fixture body: the URL of a fresh database on ``backend``, dropped afterwards."""
    url, drop = create_database(backend, tmp_path)
    yield url
    drop()
