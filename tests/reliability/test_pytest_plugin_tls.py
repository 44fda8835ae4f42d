"""The pytest plugin's own connections (reachability check, CREATE/DROP DATABASE of xdist
workers) against a private MariaDB that refuses plaintext (``require_secure_transport``)
and a private PostgreSQL that only accepts ``hostssl`` for the test user: they must use TLS
as the app's engine does for ``ssl=true``."""

from __future__ import annotations

import os
import shutil

import pytest
import sqlalchemy as sa
from helpers.servers import PG_OS_USER, MariaDBServer, PostgreSQLServer
from helpers.tls import TLSFiles

from .conftest import PostgreSQLFactory, ServerFactory

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
        if db.engine.dialect.name == "postgresql":
            sql = "SELECT cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl"
            return str(db.session.scalar(sa.text(sql)) or "")
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


def refuses_plaintext(plain_url: str, tls_url: str, cipher_sql: str) -> None:
    """The baseline: a plaintext connection is refused, an encrypted one accepted."""
    plain = sa.create_engine(plain_url, poolclass=sa.NullPool)
    with pytest.raises(sa.exc.OperationalError), plain.connect():
        pass
    plain.dispose()
    engine = sa.create_engine(tls_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text(cipher_sql)).one()[-1]
    engine.dispose()


@pytest.fixture(scope="module")
def tls_only_mariadb(mariadb_server_factory: ServerFactory, tls_files: TLSFiles) -> MariaDBServer:
    """A private MariaDB with TLS that refuses unencrypted connections."""
    server = mariadb_server_factory(tls=tls_files)
    server.execute("CREATE DATABASE shop_test")
    server.execute("SET GLOBAL require_secure_transport = ON")
    if server._admin is not None:
        server._admin.dispose()
    refuses_plaintext(
        server.app_url("shop_test"),
        server.app_url("shop_test", ssl_mode="REQUIRED"),
        "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
    )
    return server


@pytest.fixture(scope="module")
def tls_only_postgresql(
    postgresql_server_factory: PostgreSQLFactory, tls_files: TLSFiles
) -> PostgreSQLServer:
    """A private PostgreSQL with TLS whose user ``app`` may only connect over TLS."""
    server = postgresql_server_factory()
    for source, name in ((tls_files.server_cert, "server.pem"), (tls_files.server_key, "key.pem")):
        target = server.datadir / name
        shutil.copy(source, target)
        target.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(target, user=PG_OS_USER)
    hba = server.datadir / "pg_hba.conf"
    hba.write_text(
        "hostnossl all app 127.0.0.1/32 reject\n"
        "hostssl all app 127.0.0.1/32 scram-sha-256\n" + hba.read_text()
    )
    server.execute("ALTER SYSTEM SET ssl_cert_file = 'server.pem'")
    server.execute("ALTER SYSTEM SET ssl_key_file = 'key.pem'")
    server.execute("ALTER SYSTEM SET ssl = on")
    server.execute("SELECT pg_reload_conf()")
    server.execute("CREATE DATABASE shop_test")
    refuses_plaintext(
        server.app_url("shop_test", sslmode="disable"),
        server.app_url("shop_test", sslmode="require"),
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    return server


@pytest.mark.parametrize("workers", [None, "2"], ids=["serial", "xdist"])
@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("mysql", marks=pytest.mark.private_server),
        pytest.param("postgresql", marks=pytest.mark.private_server),
    ],
)
def test_plugin_connects_with_tls_to_a_server_that_requires_it(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    tls_files: TLSFiles,
    backend: str,
    workers: str | None,
) -> None:
    server: MariaDBServer | PostgreSQLServer = request.getfixturevalue(
        f"tls_only_{'mariadb' if backend == 'mysql' else 'postgresql'}"
    )
    for name in ("ENTITYDB_TEST_URL", "DB_CONNECTION_STRING", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    pytester.mkpydir("notes")
    pytester.mkpydir("notes/entities")
    (pytester.path / "notes" / "__init__.py").write_text(APP)
    (pytester.path / "notes" / "entities" / "note_entity.py").write_text(ENTITY)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nfilterwarnings = error\nentitydb_schema = create_all\n")
    pytester.makepyfile(test_notes=TESTS)
    url = server.app_url("shop_test", ssl="true", ssl_ca=str(tls_files.ca))
    args = ["-p", "no:cacheprovider", f"--entitydb-url={url}"]
    if workers:
        args += ["-n", workers]

    result = pytester.runpytest_subprocess(*args)

    result.assert_outcomes(passed=4)
    assert server.app_password not in result.stdout.str()
    if isinstance(server, MariaDBServer):
        engine = tls_engine(server)
        listing = "SELECT schema_name FROM information_schema.schemata"
    else:
        engine = sa.create_engine(server.url("postgres"), poolclass=sa.NullPool)
        listing = "SELECT datname FROM pg_database"
    with engine.connect() as conn:
        names = set(conn.scalars(sa.text(listing)))
    engine.dispose()
    # the workers' databases were created and dropped over TLS; the named one is kept
    assert {name for name in names if name.startswith("shop_test")} == {"shop_test"}
