"""The pytest plugin's own connections (reachability check, CREATE/DROP DATABASE of xdist
workers) against a private MariaDB that refuses plaintext (``require_secure_transport``):
they must use TLS as the app's engine does for ``ssl=true``."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from .conftest import ServerFactory
from .servers import MariaDBServer, TLSFiles

pytestmark = [pytest.mark.mysql]
pytest_plugins = ["pytester"]

ENTITY = """
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from flask_entitydb import Entity


class Note(Entity):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.String(50))
"""

APP = """
import sqlalchemy as sa
from flask import Flask, request

from flask_entitydb import EntityDB

from .entities.note_entity import Note

db = EntityDB()


def create_app(url):
    app = Flask(__name__)
    app.config.update(DB_CONNECTION_STRING=url, TESTING=True)
    db.init_app(app)

    @app.post("/notes")
    def add():
        db.session.add(Note(text=request.json["text"]))
        db.session.commit()
        return {}, 201

    @app.get("/cipher")
    def cipher():
        return str(db.session.execute(sa.text("SHOW SESSION STATUS LIKE 'Ssl_cipher'")).one()[1])

    return app
"""

CONFTEST = """
import pytest

from notes import create_app


@pytest.fixture
def app(entitydb_url):
    return create_app(entitydb_url)
"""

TESTS = """
import pytest
import sqlalchemy as sa

from notes import Note, db


@pytest.mark.parametrize("n", range(4))
def test_note(n, entitydb_transaction, client):
    assert client.post("/notes", json={"text": f"note {n}"}).status_code == 201
    assert db.session.scalars(sa.select(Note.text)).all() == [f"note {n}"]
    assert client.get("/cipher").text != ""
"""


def tls_engine(server: MariaDBServer, database: str = "mysql") -> sa.Engine:
    return sa.create_engine(
        server.url(database),
        poolclass=sa.NullPool,
        connect_args={"ssl_mode": "REQUIRED"},
        isolation_level="AUTOCOMMIT",
    )


@pytest.fixture(scope="module")
def tls_only_mariadb(mariadb_server_factory: ServerFactory, tls_files: TLSFiles) -> MariaDBServer:
    """A private MariaDB with TLS that refuses unencrypted connections."""
    server = mariadb_server_factory(tls=tls_files)
    server.execute("CREATE DATABASE shop_test")
    server.execute("SET GLOBAL require_secure_transport = ON")
    if server._admin is not None:
        server._admin.dispose()
    # the baseline: a plaintext connection is refused, an encrypted one accepted
    plain = sa.create_engine(server.app_url("shop_test"), poolclass=sa.NullPool)
    with pytest.raises(sa.exc.OperationalError), plain.connect():
        pass
    plain.dispose()
    engine = tls_engine(server)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW SESSION STATUS LIKE 'Ssl_cipher'")).one()[1]
    engine.dispose()
    return server


@pytest.mark.parametrize("workers", [None, "2"], ids=["serial", "xdist"])
def test_plugin_connects_with_tls_to_a_mysql_server_that_requires_it(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tls_only_mariadb: MariaDBServer,
    tls_files: TLSFiles,
    workers: str | None,
) -> None:
    for name in ("ENTITYDB_TEST_URL", "DB_CONNECTION_STRING", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    pytester.mkpydir("notes")
    pytester.mkpydir("notes/entities")
    (pytester.path / "notes" / "__init__.py").write_text(APP)
    (pytester.path / "notes" / "entities" / "note_entity.py").write_text(ENTITY)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nfilterwarnings = error\nentitydb_schema = create_all\n")
    pytester.makepyfile(test_notes=TESTS)
    url = tls_only_mariadb.app_url("shop_test", ssl="true", ssl_ca=str(tls_files.ca))
    args = ["-p", "no:cacheprovider", f"--entitydb-url={url}"]
    if workers:
        args += ["-n", workers]

    result = pytester.runpytest_subprocess(*args)

    result.assert_outcomes(passed=4)
    assert tls_only_mariadb.app_password not in result.stdout.str()
    engine = tls_engine(tls_only_mariadb)
    with engine.connect() as conn:
        names = set(conn.scalars(sa.text("SELECT schema_name FROM information_schema.schemata")))
    engine.dispose()
    # the workers' databases were created and dropped over TLS; the named one is kept
    assert {name for name in names if name.startswith("shop_test")} == {"shop_test"}
