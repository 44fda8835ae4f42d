"""The scratch databases of the equality proof, on the app's own backend: a database
next to the app's on its server (:func:`~.._lint.scratch.scratch_database`), or a
temporary file for SQLite; the revisions run on them through the app's ``env.py``, as
they run on the app's database."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import command
from flask import Flask

from flask_entitydb.migrations._config import make_config
from flask_entitydb.migrations._context import PathArg, quiet
from flask_entitydb.migrations._lint.scratch import scratch_database
from flask_entitydb.migrations._squash.files import locations


@contextmanager
def scratch_engine(url: sa.URL) -> Iterator[sa.Engine]:
    """An empty database on the backend of ``url``, removed afterwards."""
    if url.get_backend_name() != "sqlite":
        with scratch_database(url) as engine:
            yield engine
        return
    with tempfile.TemporaryDirectory(prefix="entitydb-squash-") as folder:
        path = os.path.join(folder, "scratch.sqlite3")
        engine = sa.create_engine(url.set(database=path), poolclass=sa.NullPool)
        try:
            yield engine
        finally:
            engine.dispose()


def upgrade_scratch(
    app: Flask,
    directory: PathArg,
    engine: sa.Engine,
    revision: str,
    *,
    only: str | None = None,
) -> None:
    """Upgrade the scratch database of ``engine`` to ``revision`` through ``env.py``;
    with the revisions of the folder ``only`` instead of the migrations folder's."""
    config = make_config(app, directory, engine=engine)
    with quiet():
        if only is None:
            command.upgrade(config, revision)
            return
        with locations(config, only):
            command.upgrade(config, revision)
