"""Running example test suites with the pytest plugin in a subprocess (pytester), and
looking at the databases they leave behind."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

SUBPROCESS_ENV = (
    "ENTITYDB_TEST_URL",
    "DB_CONNECTION_STRING",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
)
"""Variables of this run that must not leak into the example suite's run."""


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove :data:`SUBPROCESS_ENV` for the example suite's run."""
    for name in SUBPROCESS_ENV:
        monkeypatch.delenv(name, raising=False)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in a subprocess in ``pytester``'s folder."""
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def scalar(url: str, sql: str) -> object:
    """The first value ``sql`` returns on ``url``."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text(sql))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    """The tables of the database ``url``."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def server_databases(url: str, prefix: str, *, templates: bool = False) -> set[str]:
    """Names of the databases on the server of ``url`` that start with ``prefix``
    (without the plugin's schema templates, ``<prefix>_tpl_<hash>``, unless asked)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    listing = (
        "SELECT datname FROM pg_database"
        if engine.dialect.name == "postgresql"
        else "SELECT schema_name FROM information_schema.schemata"
    )
    try:
        with engine.connect() as conn:
            names = {str(name) for name in conn.scalars(sa.text(listing))}
    finally:
        engine.dispose()
    found = {name for name in names if name.startswith(prefix) and name != prefix}
    if templates:
        return found
    return {name for name in found if not name.startswith(f"{prefix}_tpl_")}


def admin_execute(url: str, sql: str) -> None:
    """Run ``sql`` on ``url`` in autocommit mode (CREATE/DROP DATABASE)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        engine.dispose()
