"""The scratch database of ``flask db lint``: an empty database next to the app's, on the
same server, where the revisions' recorded statements are run so the server itself can
judge them (:mod:`.mysql`, :mod:`.postgresql`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL

from flask_entitydb._settings.masking import mask_text


@contextmanager
def scratch_database(url: URL) -> Iterator[sa.Engine]:
    """An empty database ``<database>_lint_<random>`` on the server of ``url``, dropped
    afterwards (the user needs the privilege to create databases)."""
    name = f"{(url.database or 'app')[:40]}_lint_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote_identifier(name)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
        engine = sa.create_engine(url.set(database=name), poolclass=sa.NullPool)
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
    finally:
        admin.dispose()


def server_message(error: sa.exc.DBAPIError, url: URL) -> str:
    """The server's error on one line, without the password."""
    message = mask_text(" ".join(str(error.orig).split()))
    if url.password:
        message = message.replace(str(url.password), "***")
    return message
