"""Throwaway Flask app packages for the ``flask db`` tests.

Each test gets a package with a unique name under ``tmp_path/src`` with its own declarative
``Base`` (so tables of different tests never meet in one metadata), an app factory and an
``entities`` package (discovered by default as ``<package>.entities``). Changing an entity
file and calling :meth:`AppPackage.create_app` again imports the package afresh, as a new
process would.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask

FLASK = str(Path(sys.executable).with_name("flask"))

INIT = """\
from flask import Flask

from flask_entitydb import EntityDB

from .base import Base

db = EntityDB(base=Base)


def create_app(**config):
    app = Flask(__name__)
    app.config.update(config)
    db.init_app(app)
    return app
"""

BASE = """\
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from flask_entitydb import NAMING_CONVENTION


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""

ENTITY_HEADER = """\
from __future__ import annotations

import datetime
import decimal
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from {package}.base import Base

"""

REVISION = '''\
"""{message}"""

import time

import sqlalchemy as sa
from alembic import op

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


class AppPackage:
    """A Flask app package written to disk, with helpers to run ``flask db`` on it."""

    def __init__(self, src: Path, url: str) -> None:
        self.src = src
        self.url = url
        self.name = f"app_{uuid.uuid4().hex[:10]}"
        self.path = src / self.name
        self.migrations = self.path / "migrations"
        self.versions = self.migrations / "versions"
        self.apps: list[Flask] = []
        self.write("__init__.py", INIT)
        self.write("base.py", BASE)
        self.write("entities/__init__.py", "")

    # -- files -----------------------------------------------------------------------------

    def write(self, relative: str, text: str) -> Path:
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        importlib.invalidate_caches()
        return path

    def write_entity(self, stem: str, body: str) -> Path:
        """Write ``entities/<stem>_entity.py`` with the usual imports and ``body``."""
        header = ENTITY_HEADER.format(package=self.name)
        return self.write(f"entities/{stem}_entity.py", header + textwrap.dedent(body))

    def write_revision(
        self,
        rev: str,
        down: str | None,
        upgrade: str,
        downgrade: str = "pass",
        message: str = "",
    ) -> Path:
        text = REVISION.format(
            message=message or f"revision {rev}",
            rev=rev,
            down=down,
            upgrade=textwrap.indent(textwrap.dedent(upgrade).strip(), "    "),
            downgrade=textwrap.indent(textwrap.dedent(downgrade).strip(), "    "),
        )
        return self.write(f"migrations/versions/{rev}_rev.py", text)

    def revision_files(self) -> list[Path]:
        return sorted(self.versions.glob("*.py"))

    # -- in-process ------------------------------------------------------------------------

    def create_app(self, **config: Any) -> Flask:
        """Import the package afresh (as a new process would) and create an app."""
        for name in [m for m in sys.modules if m == self.name or m.startswith(self.name + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()
        module = importlib.import_module(self.name)
        config.setdefault("DB_CONNECTION_STRING", self.url)
        app: Flask = module.create_app(**config)
        self.apps.append(app)
        return app

    def cli(self, *args: str, app: Flask | None = None) -> Result:
        """``flask db <args>`` through ``app.test_cli_runner()`` (a fresh app by default)."""
        app = app or self.create_app()
        return app.test_cli_runner().invoke(args=["db", *args])

    # -- subprocesses ----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PYTHONPATH=os.pathsep.join([str(self.src), env.get("PYTHONPATH", "")]),
            FLASK_APP=self.name,
            DB_CONNECTION_STRING=self.url,
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.pop("FLASK_DEBUG", None)
        return env

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The real ``flask db <args>`` in a subprocess."""
        return self.run_command([FLASK, "db", *args], timeout=timeout)

    def run_command(
        self, command: Sequence[str], timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(command),
            env=self.env(),
            cwd=self.src,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [FLASK, "db", *args],
            env=self.env(),
            cwd=self.src,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # -- the database ----------------------------------------------------------------------

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url, poolclass=sa.NullPool)

    def tables(self) -> set[str]:
        """The database's tables, but for the migration journal (every migrating command
        creates it; tests/reliability/test_migration_journal*.py read it)."""
        engine = self.engine()
        try:
            return set(sa.inspect(engine).get_table_names()) - {"flask_entitydb_journal"}
        finally:
            engine.dispose()

    def version(self) -> set[str]:
        """The revisions in the version table (empty when none or no table)."""
        engine = self.engine()
        try:
            with engine.connect() as connection:
                if not sa.inspect(connection).has_table("alembic_version"):
                    return set()
                rows = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
                return {row[0] for row in rows}
        finally:
            engine.dispose()

    def scalar(self, sql: str) -> Any:
        engine = self.engine()
        try:
            with engine.connect() as connection:
                return connection.execute(sa.text(sql)).scalar()
        finally:
            engine.dispose()

    def dispose(self) -> None:
        for app in self.apps:
            fsa = app.extensions.get("sqlalchemy")
            if fsa is not None:
                with app.app_context():
                    for engine in fsa.engines.values():
                        engine.dispose()
        for name in [m for m in sys.modules if m == self.name or m.startswith(self.name + ".")]:
            del sys.modules[name]


def make_package(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppPackage]:
    """Fixture body: an :class:`AppPackage` importable in this process."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    package = AppPackage(src, url)
    try:
        yield package
    finally:
        package.dispose()


def ok(result: Result) -> str:
    """The output of a command that must have succeeded (without the ``Database: ...``
    line naming the database, tested in tests/test_cli_database_named.py)."""
    assert result.exit_code == 0, result.output
    return without_database_line(result.output)


def without_database_line(text: str) -> str:
    """``text`` (a command's stderr or output) without the ``Database: ...`` lines the
    commands that work on a database print first (tests/test_cli_database_named.py)."""
    return "".join(
        line for line in text.splitlines(keepends=True) if not line.startswith("Database: ")
    )


ORDER_ENTITY = """\
class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
"""

TAG_ENTITY = """\
class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
"""

USER_ENTITY = """\
class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
"""

USER_ENTITY_WITH_EMAIL = """\
class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    email: Mapped[str | None] = mapped_column(sa.String(120))
"""
