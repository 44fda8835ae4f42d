"""``ssl=`` in ``DB_CONNECTION_STRING`` against real private MariaDB and PostgreSQL servers
with TLS (a certificate for 127.0.0.1 signed by a CA made for the session; the servers also
listen on 127.0.0.2, a name the certificate does not list) and one MariaDB without any TLS.

"The system CA bundle" is the test CA where a test sets ``SSL_CERT_FILE`` to it: OpenSSL
(and so every driver) reads its default roots from there."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.migration_apps import without_database_line
from helpers.servers import PG_OS_USER, MariaDBServer, PostgreSQLServer, pg_private_dir
from helpers.tls import TLSFiles

from flask_entitydb import ConfigurationError, EntityDB

pytestmark = [
    pytest.mark.private_server,
    pytest.mark.filterwarnings("ignore:No entity classes found"),
]

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


@pytest.fixture
def system_roots_are_the_test_ca(tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the test CA the system CA bundle of this process (OpenSSL's SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca))


@pytest.mark.parametrize("word", ["true", "1", "yes", "required"])
@pytest.mark.usefixtures("system_roots_are_the_test_ca")
def test_ssl_true_encrypts_every_new_connection(
    make_app: Callable[..., Flask], private_mariadb: MariaDBServer, word: str
) -> None:
    app, db = cipher_app(make_app, private_mariadb.app_url(ssl=word))
    ciphers = ciphers_of_new_connections(app, db)
    assert all(ciphers), f"a connection made with ssl={word} was plaintext: {ciphers}"


@pytest.mark.usefixtures("system_roots_are_the_test_ca")
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


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"ssl": "true"}, id="verified"),
        pytest.param({"ssl": "true", "ssl_verify": "false"}, id="unverified"),
        pytest.param({"ssl": "true", "ssl_ca": "{ca}"}, id="with-ca"),
    ],
)
def test_ssl_true_refused_by_server_without_tls(
    make_app: Callable[..., Flask],
    plain_mariadb: MariaDBServer,
    tls_files: TLSFiles,
    caplog: pytest.LogCaptureFixture,
    query: dict[str, str],
) -> None:
    query = {key: value.format(ca=tls_files.ca) for key, value in query.items()}
    app, db = cipher_app(make_app, plain_mariadb.app_url(**query))
    caplog.set_level(logging.DEBUG)
    for _ in range(2):  # refused every time, not only on the first connection
        caplog.clear()
        # refused by the driver (verified TLS) or by the Ssl_cipher check of each connection
        with pytest.raises((ConfigurationError, sa.exc.OperationalError)) as info:
            app.test_client().get("/cipher")
        if isinstance(info.value, ConfigurationError):
            message = str(info.value)
            assert "ssl=true" in message and "unencrypted" in message
        else:
            [message] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert "the server does not offer TLS" in message
        assert "\n" not in message
        assert plain_mariadb.app_password not in message
    with app.app_context():
        assert db.engine.pool.checkedout() == 0
    # the refused connections were closed, none is left open on the server
    rows = plain_mariadb.execute("SELECT id FROM information_schema.processlist WHERE user='app'")
    assert rows == []
    assert all(plain_mariadb.app_password not in r.getMessage() for r in caplog.records)


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
    lines = without_database_line(result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "TLS" in lines[0]
    assert plain_mariadb.app_password not in result.stderr + result.stdout
    assert (
        plain_mariadb.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :db", db=database
        )
        == []
    )  # nothing written


# -- verification: right CA and name, wrong CA, wrong name, no CA; every driver ------------

MYSQL_DRIVERS = [
    "mysql+mysqldb",
    "mysql+pymysql",
    "mysql+mysqlconnector",
    "mariadb+mariadbconnector",
]
POSTGRESQL_DRIVERS = ["postgresql+psycopg", "postgresql+psycopg2", "postgresql+pg8000"]
OTHER_NAME = "127.0.0.2"
"""An address the servers listen on that their certificate does not list."""

CHAIN_HINT = "the server's TLS certificate is not signed by a CA this machine trusts"
NAME_HINT = f"the server's TLS certificate does not name the host '{OTHER_NAME}'"


@pytest.fixture(scope="module")
def tls_mariadb(
    mariadb_server_factory: Callable[..., MariaDBServer], tls_files: TLSFiles
) -> MariaDBServer:
    """A private MariaDB with the session's certificate, on 127.0.0.1 and 127.0.0.2."""
    server = mariadb_server_factory(
        tls=tls_files, options=[f"--bind-address=127.0.0.1,{OTHER_NAME}"]
    )
    server.execute("CREATE USER 'app'@'%' IDENTIFIED BY :pw", pw=server.app_password)
    server.execute("GRANT ALL PRIVILEGES ON *.* TO 'app'@'%'")
    return server


@pytest.fixture(scope="module")
def tls_postgresql(
    postgresql_server_factory: Callable[..., PostgreSQLServer], tls_files: TLSFiles
) -> Iterator[PostgreSQLServer]:
    """A private PostgreSQL with ``ssl=on`` and the session's certificate, on 127.0.0.1
    and 127.0.0.2."""
    files = pg_private_dir("edb-pg-tls-")
    for source in (tls_files.server_cert, tls_files.server_key):
        target = files / source.name
        shutil.copy(source, target)
        target.chmod(0o600)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(PG_OS_USER)
            os.chown(target, owner.pw_uid, owner.pw_gid)
    yield postgresql_server_factory(
        settings=[
            "ssl=on",
            f"ssl_cert_file={files / tls_files.server_cert.name}",
            f"ssl_key_file={files / tls_files.server_key.name}",
            f"listen_addresses=127.0.0.1,{OTHER_NAME}",
        ]
    )
    shutil.rmtree(files, ignore_errors=True)


def tls_url(server: MariaDBServer | PostgreSQLServer, driver: str, host: str, **query: str) -> str:
    url = sa.make_url(server.app_url(**query)).set(drivername=driver, host=host)
    return url.render_as_string(hide_password=False)


def encrypted(backend: str, db: EntityDB) -> bool:
    """Whether the session's connection is encrypted, as the server sees it."""
    if backend == "postgresql":
        sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        return bool(db.session.execute(sa.text(sql)).scalar())
    return bool(db.session.execute(sa.text(CIPHER_SQL)).one()[1])


def db_current(
    make_app: Callable[..., Flask], tmp_path: Path, url: str, **config: object
) -> tuple[int, str]:
    """``flask db current`` of an app using ``url``: exit code and output."""
    app = make_app(
        DB_CONNECTION_STRING=url, ENTITYDB_MIGRATIONS_DIR=str(tmp_path / "migrations"), **config
    )
    EntityDB(app)
    runner = app.test_cli_runner()
    if not (tmp_path / "migrations").exists():
        assert runner.invoke(args=["db", "init"]).exit_code == 0
    result = runner.invoke(args=["db", "current"])
    return result.exit_code, result.output


VERIFICATION_CASES = [  # (host, ca, refusal)
    pytest.param(("127.0.0.1", "ca", None), id="right-ca-and-name"),
    pytest.param(("127.0.0.1", "wrong_ca", CHAIN_HINT), id="wrong-ca"),
    pytest.param((OTHER_NAME, "ca", NAME_HINT), id="wrong-host-name"),
    pytest.param(("127.0.0.1", None, CHAIN_HINT), id="self-signed-without-ssl-ca"),
]


def _connects_encrypted(make_app: Callable[..., Flask], backend: str, url: str) -> bool:
    app = make_app(DB_CONNECTION_STRING=url)
    db = EntityDB(app)
    with app.app_context():
        return encrypted(backend, db)


@pytest.fixture(params=VERIFICATION_CASES)
def check_verification(
    request: pytest.FixtureRequest,
    tls_files: TLSFiles,
    make_app: Callable[..., Flask],
    tmp_path: Path,
) -> Callable[..., None]:
    """``check(backend, server, driver)``, for each of :data:`VERIFICATION_CASES`:
    ``flask db current`` on ``host`` with ``ssl=true`` (and ``ssl_ca`` of the file
    ``ca``) connects encrypted, or is refused with one line naming ``refusal``."""
    host, ca, refusal = request.param

    def check(backend: str, server: MariaDBServer | PostgreSQLServer, driver: str) -> None:
        query = {"ssl": "true"}
        if ca is not None:
            query["ssl_ca"] = str(getattr(tls_files, ca))
        url = tls_url(server, driver, host, **query)
        code, output = db_current(make_app, tmp_path, url)
        assert server.app_password not in output
        if refusal is None:
            assert code == 0, output
            assert _connects_encrypted(make_app, backend, url)
            return
        assert code == 1
        lines = without_database_line(output).strip().splitlines()
        assert len(lines) == 1, output
        assert lines[0].startswith("Error: Cannot connect to the database"), output
        assert refusal in lines[0], output

    return check


@pytest.mark.parametrize("driver", MYSQL_DRIVERS)
def test_ssl_true_verifies_mysql(
    tls_mariadb: MariaDBServer, check_verification: Callable[..., None], driver: str
) -> None:
    check_verification("mysql", tls_mariadb, driver)


@pytest.mark.parametrize("driver", POSTGRESQL_DRIVERS)
def test_ssl_true_verifies_postgresql(
    tls_postgresql: PostgreSQLServer, check_verification: Callable[..., None], driver: str
) -> None:
    check_verification("postgresql", tls_postgresql, driver)


@pytest.mark.parametrize("driver", MYSQL_DRIVERS)
@pytest.mark.usefixtures("system_roots_are_the_test_ca")
def test_ssl_true_uses_the_system_roots_mysql(
    tls_mariadb: MariaDBServer, driver: str, make_app: Callable[..., Flask]
) -> None:
    url = tls_url(tls_mariadb, driver, "127.0.0.1", ssl="true")
    assert _connects_encrypted(make_app, "mysql", url)


@pytest.mark.parametrize("driver", POSTGRESQL_DRIVERS)
@pytest.mark.usefixtures("system_roots_are_the_test_ca")
def test_ssl_true_uses_the_system_roots_postgresql(
    tls_postgresql: PostgreSQLServer, driver: str, make_app: Callable[..., Flask]
) -> None:
    url = tls_url(tls_postgresql, driver, "127.0.0.1", ssl="true")
    assert _connects_encrypted(make_app, "postgresql", url)


@pytest.mark.parametrize(
    ("backend", "driver"),
    [("mysql", d) for d in MYSQL_DRIVERS] + [("postgresql", d) for d in POSTGRESQL_DRIVERS],
)
def test_ssl_false_is_plaintext_with_every_driver(
    request: pytest.FixtureRequest, backend: str, driver: str, make_app: Callable[..., Flask]
) -> None:
    # pymysql and mysql-connector encrypt on their own when the server offers TLS
    server = request.getfixturevalue("tls_mariadb" if backend == "mysql" else "tls_postgresql")
    app = make_app(DB_CONNECTION_STRING=tls_url(server, driver, "127.0.0.1", ssl="false"))
    db = EntityDB(app)
    for _ in range(2):  # each time on a new connection
        with app.app_context():
            db.engine.dispose()
        with app.app_context():
            assert not encrypted(backend, db)


@pytest.mark.parametrize(
    ("backend", "driver"),
    [("mysql", d) for d in MYSQL_DRIVERS] + [("postgresql", d) for d in POSTGRESQL_DRIVERS],
)
def test_ssl_verify_false_encrypts_without_verifying_and_says_so(
    request: pytest.FixtureRequest,
    backend: str,
    driver: str,
    make_app: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = request.getfixturevalue("tls_mariadb" if backend == "mysql" else "tls_postgresql")
    # the wrong host name and no CA: only the opt-out lets this connect
    url = tls_url(server, driver, OTHER_NAME, ssl="true", ssl_verify="false")
    app = make_app(DB_CONNECTION_STRING=url)
    db = EntityDB(app)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "'ssl_verify=false'" in warning.getMessage()
    assert "not verified" in warning.getMessage()
    assert server.app_password not in warning.getMessage()
    with app.app_context():
        assert encrypted(backend, db)


def turn_tls_off(
    dialect: object, record: object, cargs: object, cparams: dict[str, object]
) -> None:
    cparams["sslmode"] = "disable"


def test_postgresql_plaintext_connection_refused_by_the_tls_check(
    tls_postgresql: PostgreSQLServer, tls_files: TLSFiles, make_app: Callable[..., Flask]
) -> None:
    # a do_connect hook of the app's own (as used for cloud IAM tokens) turns TLS off:
    # every new connection is still checked in pg_stat_ssl, and refused
    url = tls_url(
        tls_postgresql, "postgresql+psycopg", "127.0.0.1", ssl="true", ssl_ca=str(tls_files.ca)
    )
    app = make_app(DB_CONNECTION_STRING=url)
    db = EntityDB(app)
    with app.app_context():
        sa.event.listen(db.engine, "do_connect", turn_tls_off)
        for _ in range(2):
            with pytest.raises(ConfigurationError, match="accepted an unencrypted connection"):
                db.session.execute(sa.text("SELECT 1"))
            db.session.rollback()
        assert db.engine.pool.checkedout() == 0
