"""``ssl=`` in ``DB_CONNECTION_STRING`` against real private MariaDB servers, one with TLS
(a certificate signed by a CA made for the session) and one without any TLS."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_entitydb import ConfigurationError, EntityDB

from .servers import MariaDBServer, TLSFiles

pytestmark = [pytest.mark.mysql, pytest.mark.filterwarnings("ignore:No entity classes found")]

CIPHER_SQL = "SHOW SESSION STATUS LIKE 'Ssl_cipher'"


def cipher_app(make_app: Callable[..., Flask], url: str) -> tuple[Flask, EntityDB]:
    """An app whose ``/cipher`` view reports the TLS cipher of its session's connection."""
    app = make_app(DB_CONNECTION_STRING=url)
    db = EntityDB(app)

    @app.get("/cipher")
    def cipher() -> str:
        row = db.session.execute(sa.text(CIPHER_SQL)).one()
        return str(row[1])

    return app, db


def ciphers_of_new_connections(app: Flask, db: EntityDB, count: int = 3) -> list[str]:
    """The cipher seen by ``count`` requests, each on a brand-new connection."""
    seen = []
    for _ in range(count):
        with app.app_context():
            db.engine.dispose()  # the next request must open a new connection
        response = app.test_client().get("/cipher")
        assert response.status_code == 200, response.text
        seen.append(response.text)
    return seen


@pytest.mark.parametrize("word", ["true", "1", "yes", "required"])
def test_ssl_true_encrypts_every_new_connection(
    make_app: Callable[..., Flask], private_mariadb: MariaDBServer, word: str
) -> None:
    app, db = cipher_app(make_app, private_mariadb.app_url(ssl=word))
    ciphers = ciphers_of_new_connections(app, db)
    assert all(ciphers), f"a connection made with ssl={word} was plaintext: {ciphers}"


def test_ssl_true_in_the_users_exact_format(
    make_app: Callable[..., Flask], private_mariadb: MariaDBServer
) -> None:
    server = private_mariadb
    url = f"mysql+mysqldb://app:{server.app_password}@127.0.0.1:{server.port}/test"
    url += "?ssl=true&charset=utf8mb4"
    app, _ = cipher_app(make_app, url)
    assert app.test_client().get("/cipher").text != ""


def test_without_ssl_parameter_the_connection_is_plaintext(
    make_app: Callable[..., Flask], private_mariadb: MariaDBServer
) -> None:
    # the baseline that makes the other tests meaningful: the driver does not encrypt
    # on its own, even though this server offers TLS
    app, db = cipher_app(make_app, private_mariadb.app_url())
    assert ciphers_of_new_connections(app, db, 1) == [""]


def test_ssl_false_gives_plaintext(
    make_app: Callable[..., Flask], private_mariadb: MariaDBServer
) -> None:
    app, db = cipher_app(make_app, private_mariadb.app_url(ssl="false"))
    assert ciphers_of_new_connections(app, db, 2) == ["", ""]


def test_ssl_true_refused_by_server_without_tls(
    make_app: Callable[..., Flask],
    plain_mariadb: MariaDBServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, db = cipher_app(make_app, plain_mariadb.app_url(ssl="true"))
    caplog.set_level(logging.DEBUG)
    for _ in range(2):  # refused every time, not only on the first connection
        with pytest.raises(ConfigurationError) as info:
            app.test_client().get("/cipher")
        message = str(info.value)
        assert "TLS" in message and "ssl=true" in message
        assert "does not offer TLS" in message or "unencrypted" in message
        assert "\n" not in message
        assert plain_mariadb.app_password not in message
    with app.app_context():
        assert db.engine.pool.checkedout() == 0
    # the refused connections were closed, none is left open on the server
    rows = plain_mariadb.execute("SELECT id FROM information_schema.processlist WHERE user='app'")
    assert rows == []
    assert all(plain_mariadb.app_password not in r.getMessage() for r in caplog.records)


def test_ssl_true_with_ca_refused_by_server_without_tls(
    make_app: Callable[..., Flask], plain_mariadb: MariaDBServer, tls_files: TLSFiles
) -> None:
    app, _ = cipher_app(make_app, plain_mariadb.app_url(ssl="true", ssl_ca=str(tls_files.ca)))
    with pytest.raises(ConfigurationError, match="TLS"):
        app.test_client().get("/cipher")


def test_ssl_ca_of_the_test_ca_verifies(
    make_app: Callable[..., Flask], private_mariadb: MariaDBServer, tls_files: TLSFiles
) -> None:
    url = private_mariadb.app_url(ssl="true", ssl_ca=str(tls_files.ca))
    app, db = cipher_app(make_app, url)
    assert all(ciphers_of_new_connections(app, db, 2))


def test_wrong_ca_is_refused(
    make_app: Callable[..., Flask], private_mariadb: MariaDBServer, tls_files: TLSFiles
) -> None:
    url = private_mariadb.app_url(ssl="true", ssl_ca=str(tls_files.wrong_ca))
    app, db = cipher_app(make_app, url)
    with pytest.raises(sa.exc.OperationalError) as info:
        app.test_client().get("/cipher")
    assert "certificate" in str(info.value)
    assert private_mariadb.app_password not in str(info.value)
    with app.app_context():
        assert db.engine.pool.checkedout() == 0


def test_ssl_false_with_ssl_ca_is_a_configuration_error(
    make_app: Callable[..., Flask], private_mariadb: MariaDBServer, tls_files: TLSFiles
) -> None:
    # mysqlclient on MariaDB Connector/C encrypts whenever a CA is given, whatever
    # ssl_mode says: 'ssl=false' could not be honoured, so it is refused up front
    app = make_app(
        DB_CONNECTION_STRING=private_mariadb.app_url(ssl="false", ssl_ca=str(tls_files.ca))
    )
    with pytest.raises(ConfigurationError, match=r"'ssl=false'.*'ssl_ca'") as info:
        EntityDB(app)
    assert private_mariadb.app_password not in str(info.value)


def test_ssl_true_with_ssl_mode_disabled_is_a_configuration_error(
    make_app: Callable[..., Flask], private_mariadb: MariaDBServer
) -> None:
    app = make_app(DB_CONNECTION_STRING=private_mariadb.app_url(ssl="true", ssl_mode="DISABLED"))
    with pytest.raises(ConfigurationError, match=r"'ssl=true'.*'ssl_mode=DISABLED'"):
        EntityDB(app)


# -- flask db upgrade over TLS --------------------------------------------------------------

APP_PACKAGE = """
from flask import Flask
from flask_entitydb import EntityDB

def create_app():
    app = Flask(__name__)
    EntityDB(app)
    return app
"""

PROBE_ENTITY = """
from sqlalchemy.orm import Mapped, mapped_column
from flask_entitydb import Entity


class TLSProbe(Entity):
    __tablename__ = "tls_probe"
    cipher: Mapped[str] = mapped_column(primary_key=True)
"""

PROBE_REVISION = '''"""tls probe

Revision ID: 0001tlsprobe
Revises:
"""
from alembic import op

revision = "0001tlsprobe"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    # what the migration's own connection sees
    op.execute(
        "CREATE TABLE tls_probe AS SELECT VARIABLE_VALUE AS cipher"
        " FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'"
    )


def downgrade():
    op.drop_table("tls_probe")
'''


@pytest.fixture(scope="module")
def migrating_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package ``tlsapp`` with a migrations folder holding one probe revision."""
    root = tmp_path_factory.mktemp("tlsapp")
    package = root / "tlsapp"
    package.mkdir()
    (package / "__init__.py").write_text(APP_PACKAGE)
    (package / "entities").mkdir()
    (package / "entities" / "__init__.py").write_text("")
    (package / "entities" / "probe_entity.py").write_text(PROBE_ENTITY)
    result = run_flask(root, "sqlite:///" + str(root / "init.db"), "db", "init")
    assert result.returncode == 0, result.stderr
    (package / "migrations" / "versions" / "0001_tls_probe.py").write_text(PROBE_REVISION)
    return root


def run_flask(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "FLASK_APP"}
    env.update(DB_CONNECTION_STRING=url, PYTHONPATH=str(root))
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "tlsapp:create_app", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_flask_db_upgrade_over_tls(
    migrating_app: Path, private_mariadb: MariaDBServer, tls_files: TLSFiles
) -> None:
    database = private_mariadb.create_database()
    url = private_mariadb.app_url(database, ssl="true", ssl_ca=str(tls_files.ca))
    result = run_flask(migrating_app, url, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert private_mariadb.app_password not in result.stdout + result.stderr
    ciphers = private_mariadb.execute(f"SELECT cipher FROM {database}.tls_probe")
    assert len(ciphers) == 1 and ciphers[0][0], "the migration ran on a plaintext connection"
    version = private_mariadb.execute(f"SELECT version_num FROM {database}.alembic_version")
    assert [tuple(row) for row in version] == [("0001tlsprobe",)]


@pytest.mark.slow
def test_flask_db_upgrade_refused_without_tls(
    migrating_app: Path, plain_mariadb: MariaDBServer
) -> None:
    database = plain_mariadb.create_database()
    result = run_flask(migrating_app, plain_mariadb.app_url(database, ssl="true"), "db", "upgrade")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "TLS" in lines[0]
    assert plain_mariadb.app_password not in result.stderr + result.stdout
    assert (
        plain_mariadb.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :db", db=database
        )
        == []
    )  # nothing written
