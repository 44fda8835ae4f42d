"""Where the connection string comes from and what it turns into."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_entitydb import ConfigurationError, EntityDB
from flask_entitydb._settings.keys import KNOWN_KEYS
from flask_entitydb._settings.masking import mask_text, mask_url
from flask_entitydb._settings.options import MYSQL_POOL_RECYCLE

MYSQL = "mysql+mysqldb://root:s3cret-pw@localhost:3306/flask"


@pytest.fixture(autouse=True)
def _no_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_CONNECTION_STRING", raising=False)


def settings_of(app: Flask) -> object:
    return app.extensions["entitydb"].settings


def test_sqlite_default_in_instance_folder(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    assert not Path(app.instance_path).exists()
    with caplog.at_level(logging.INFO, logger="flask_entitydb"):
        db = EntityDB(app)
    expected = Path(app.instance_path) / "entitydb.sqlite3"
    assert Path(app.instance_path).is_dir()
    assert db.state(app).settings.url.database == str(expected)
    messages = [r.getMessage() for r in caplog.records if r.name == "flask_entitydb"]
    assert messages == [
        f"DB_CONNECTION_STRING is not set; using the embedded SQLite database {expected}"
    ]
    with app.app_context():
        db.session.execute(sa.text("select 1"))
    assert expected.exists()


def test_app_config_wins_over_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DB_CONNECTION_STRING", f"sqlite:///{tmp_path}/env.db")
    app = make_app(DB_CONNECTION_STRING=f"sqlite:///{tmp_path}/config.db")
    db = EntityDB(app)
    assert db.state(app).settings.url.database == f"{tmp_path}/config.db"
    assert db.state(app).settings.url_source == "DB_CONNECTION_STRING in the app config"


def test_environment_used_when_config_missing(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DB_CONNECTION_STRING", f"sqlite:///{tmp_path}/env.db")
    app = make_app()
    db = EntityDB(app)
    assert db.state(app).settings.url.database == f"{tmp_path}/env.db"
    assert db.state(app).settings.url_source == "DB_CONNECTION_STRING in the environment"


def test_sqlalchemy_database_uri_honoured(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/legacy.db")
    db = EntityDB(app)
    with app.app_context():
        assert db.engine.url.database == f"{tmp_path}/legacy.db"


def test_existing_mysql_format_unchanged(make_app: Callable[..., Flask]) -> None:
    app = make_app(DB_CONNECTION_STRING=MYSQL + "?ssl=true&charset=utf8mb4")
    db = EntityDB(app)
    settings = db.state(app).settings
    assert settings.require_tls is True
    assert "ssl" not in settings.url.query  # never handed to the driver as a string
    assert settings.url.query["charset"] == "utf8mb4"
    # verified TLS; 'localhost' with a port is reached over TCP, not mysqlclient's socket
    assert settings.engine_options["connect_args"] == {
        "ssl_mode": "VERIFY_IDENTITY",
        "host": "127.0.0.1",
    }
    assert settings.liveness == "retry"  # no pool_pre_ping: see tests/test_liveness_config.py
    assert settings.engine_options["pool_recycle"] == MYSQL_POOL_RECYCLE


@pytest.mark.parametrize("word", ["true", "1", "yes", "required", "TRUE"])
def test_ssl_true_words(make_app: Callable[..., Flask], word: str) -> None:
    app = make_app(DB_CONNECTION_STRING=f"{MYSQL}?ssl={word}")
    assert EntityDB(app).state(app).settings.require_tls is True


def test_ssl_false_means_no_tls(make_app: Callable[..., Flask]) -> None:
    app = make_app(DB_CONNECTION_STRING=f"{MYSQL}?ssl=false")
    settings = EntityDB(app).state(app).settings
    assert settings.require_tls is False
    assert settings.engine_options["connect_args"] == {"ssl_mode": "DISABLED", "host": "127.0.0.1"}


def test_mysql_ssl_parameters_kept(make_app: Callable[..., Flask]) -> None:
    app = make_app(DB_CONNECTION_STRING=f"{MYSQL}?ssl=true&ssl_ca=/ca.pem&ssl_cert=/c&ssl_key=/k")
    settings = EntityDB(app).state(app).settings
    assert settings.url.query["ssl_ca"] == "/ca.pem"
    assert settings.url.query["ssl_cert"] == "/c"
    assert settings.url.query["ssl_key"] == "/k"


def test_utf8mb4_when_no_charset(make_app: Callable[..., Flask]) -> None:
    app = make_app(DB_CONNECTION_STRING=MYSQL)
    assert EntityDB(app).state(app).settings.url.query["charset"] == "utf8mb4"


def test_postgresql_ssl_true_is_verify_full_with_system_roots(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(DB_CONNECTION_STRING="postgresql+psycopg://u:p@h/db?ssl=true")
    url = EntityDB(app).state(app).settings.url
    assert url.query["sslmode"] == "verify-full"
    assert url.query["sslrootcert"] == "system"  # the bundled libpq is >= 16
    assert "ssl" not in url.query


def test_postgresql_ssl_verify_false_is_sslmode_require(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(DB_CONNECTION_STRING="postgresql+psycopg://u:p@h/db?ssl=true&ssl_verify=false")
    url = EntityDB(app).state(app).settings.url
    assert url.query["sslmode"] == "require"
    assert "ssl_verify" not in url.query
    assert "not verified" in caplog.text


def test_engine_options_precedence(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        DB_CONNECTION_STRING=MYSQL,
        ENTITYDB_ENGINE_OPTIONS={"pool_recycle": 120, "pool_size": 3},
    )
    db = EntityDB(app, engine_options={"pool_recycle": 600, "pool_timeout": 5})
    options = db.state(app).settings.engine_options
    assert options["pool_recycle"] == 120  # config beats constructor beats default
    assert options["pool_timeout"] == 5
    assert options["pool_size"] == 3
    assert "pool_pre_ping" not in options  # ENTITYDB_LIVENESS="retry"


def test_sqlite_foreign_keys_enforced(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    db = EntityDB(app)
    with app.app_context():
        assert db.session.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "mysql+mysqldb://root:s3cret-pw@localhost:3306/flask?ssl=maybe",
            "has 'ssl=maybe' in 'mysql+mysqldb://root:***@localhost:3306/flask?ssl=maybe';"
            " use 'ssl=true' or 'ssl=false'.",
        ),
        (
            "nonsense://root:s3cret-pw@localhost/flask",
            "names an unknown database dialect 'nonsense' in 'nonsense://root:***@localhost/flask'",
        ),
        (
            "mysql+asyncmy://root:s3cret-pw@localhost/flask",
            "uses the 'mysql+asyncmy' driver, which is not installed",
        ),
        ("sqlite:///x.db?ssl=true", "sets 'ssl' for SQLite"),
        (
            "://root:s3cret-pw@",
            "is not a valid database URL (a value of 18 characters that does not start with"
            " a scheme such as 'mysql+mysqldb://')",
        ),
        (
            "not a url s3cret-pw",
            "is not a valid database URL (a value of 19 characters that does not start with"
            " a scheme such as 'mysql+mysqldb://'); use the form"
            " 'dialect+driver://user:password@host:port/database'.",
        ),
        (
            "mysql+mysqldb://root:s3cret-pw@localhost:33o6/flask",
            "is not a valid database URL (a value of 51 characters starting 'mysql+mysqldb://')",
        ),
        (
            "mysql+mysqldb//root:s3cret-pw@localhost/flask",
            "is not a valid database URL (a value of 45 characters starting"
            " 'mysql+mysqldb//' (a scheme ends with '://'))",
        ),
        (
            "'mysql+mysqldb://root:s3cret-pw@localhost/flask'",
            "is not a valid database URL (a value of 48 characters starting with a quote);"
            " remove the quotes around the value",
        ),
        ("", "is empty or not a string"),
        (  # the URL as written: not with the 'charset=utf8mb4' added to it
            "mysql+mysqldb://root:s3cret-pw@localhost/flask?charst=utf8mb4",
            "in 'mysql+mysqldb://root:***@localhost/flask?charst=utf8mb4' passes 'charst' to"
            " the 'mysql+mysqldb' driver, which does not take it (did you mean 'charset'?)",
        ),
    ],
)
def test_bad_connection_strings(make_app: Callable[..., Flask], value: str, message: str) -> None:
    app = make_app(DB_CONNECTION_STRING=value)
    with pytest.raises(ConfigurationError) as info:
        EntityDB(app)
    text = str(info.value)
    assert text.startswith("DB_CONNECTION_STRING in the app config ")
    assert message in text
    assert "s3cret-pw" not in text
    assert "\n" not in text
    assert "entitydb" not in app.extensions


def test_missing_driver_names_the_extra(make_app: Callable[..., Flask]) -> None:
    app = make_app(DB_CONNECTION_STRING="postgresql+asyncpg://u:pw@h/db")
    with pytest.raises(ConfigurationError, match="install it with: pip install asyncpg"):
        EntityDB(app)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ENTITYDB_ENGINE_OPTIONS", "pool_size=3", "'ENTITYDB_ENGINE_OPTIONS' must be a dict"),
        ("ENTITYDB_PENDING_MIGRATIONS", "sometimes", "'ENTITYDB_PENDING_MIGRATIONS' is"),
        ("ENTITYDB_ENTITY_PACKAGES", [1, 2], "'ENTITYDB_ENTITY_PACKAGES' must be a list"),
        ("ENTITYDB_MIGRATIONS_DIR", 42, "'ENTITYDB_MIGRATIONS_DIR' must be a path"),
    ],
)
def test_bad_config_values(
    make_app: Callable[..., Flask], key: str, value: object, message: str
) -> None:
    app = make_app(**{key: value})
    with pytest.raises(ConfigurationError, match=message):
        EntityDB(app)


def test_migrations_dir_relative_to_app_root(make_app: Callable[..., Flask]) -> None:
    app = make_app(ENTITYDB_MIGRATIONS_DIR="db/migrations")
    settings = EntityDB(app).state(app).settings
    assert settings.migrations_dir == str(Path(app.root_path) / "db" / "migrations")


def test_repr_masks_password(make_app: Callable[..., Flask]) -> None:
    app = make_app(DB_CONNECTION_STRING=MYSQL)
    db = EntityDB(app)
    with app.app_context():
        assert (
            repr(db) == "<EntityDB mysql+mysqldb://root:***@localhost:3306/flask?charset=utf8mb4>"
        )
    assert "s3cret-pw" not in repr(db.state(app))


def test_mask_text() -> None:
    assert mask_text("x mysql://u:pa:ss@h/db y") == "x mysql://u:***@h/db y"


def test_an_empty_password_is_shown_as_empty() -> None:
    """'root:***' would suggest a password that is not there (the wrong one to look for
    when the server says 'using password: NO')."""
    assert mask_text("mysql://root:@h/db") == "mysql://root:@h/db"
    assert mask_url(sa.make_url("mysql+mysqldb://root:@h/db")) == "mysql+mysqldb://root:@h/db"
    assert mask_url(sa.make_url("mysql+mysqldb://root:pw@h/db")) == "mysql+mysqldb://root:***@h/db"


@pytest.mark.parametrize(
    ("config", "environ", "message"),
    [
        (
            {"ENTITYDB_LIVENES": "ping"},
            {},
            "The app config sets 'ENTITYDB_LIVENES', which flask-entitydb does not read (did"
            " you mean 'ENTITYDB_LIVENESS'?); fix its name or remove it"
            " (docs/configuration.md lists the keys).",
        ),
        (
            {"DB_CONECTION_STRING": MYSQL},
            {},
            "The app config sets 'DB_CONECTION_STRING', not 'DB_CONNECTION_STRING' (a typo?);"
            " rename it, or the app would use another database.",
        ),
        (
            {},
            {"DB_CONNECTION_STRIN": MYSQL},
            "The environment sets 'DB_CONNECTION_STRIN', not 'DB_CONNECTION_STRING' (a"
            " typo?); rename it, or the app would use the embedded SQLite database instead.",
        ),
    ],
)
def test_a_misspelled_key_is_an_error(
    make_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, object],
    environ: dict[str, str],
    message: str,
) -> None:
    """Before, each was ignored: the app ran on its defaults (the SQLite file)."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    app = make_app(**config)
    with pytest.raises(ConfigurationError) as caught:
        EntityDB(app)
    assert str(caught.value) == message
    assert "s3cret-pw" not in str(caught.value)


def test_bind_urls_and_other_keys_are_no_typo(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DB_CONNECTION_STRING_STATS", f"sqlite:///{tmp_path}/stats.db")
    app = make_app(DB_CONNECTION_STRING=f"sqlite:///{tmp_path}/app.db", ENTITYDB_LIVENESS="none")
    app.config["MY_DB_SETTING"] = 1
    EntityDB(app)


def test_every_config_key_read_is_known_and_documented() -> None:
    """The keys the package names, the known ones and docs/configuration.md's table agree,
    so a new key cannot be refused as a typo."""
    root = Path(__file__).resolve().parent.parent
    named = {
        key
        for path in (root / "flask_entitydb").rglob("*.py")
        for key in re.findall(r"ENTITYDB_[A-Z0-9_]*[A-Z0-9]", path.read_text())
    } - {"ENTITYDB_TEST_URL"}  # the pytest plugin's environment variable
    documented = set(
        re.findall(r"^\| `(ENTITYDB_\w+)`", (root / "docs/configuration.md").read_text(), re.M)
    )
    assert named == set(KNOWN_KEYS) == documented


@pytest.mark.parametrize(
    ("config_line", "error"),
    [
        (
            "app.config['DB_CONNECTION_STRING'] = 'mysql+mysqldb://root:hunter2@h/x?ssl=maybe'",
            "Error: DB_CONNECTION_STRING in the app config has 'ssl=maybe' in"
            " 'mysql+mysqldb://root:***@h/x?ssl=maybe'; use 'ssl=true' or 'ssl=false'.",
        ),
        (
            "app.config['ENTITYDB_PENDING_MIGRATION'] = 'error'",
            "Error: The app config sets 'ENTITYDB_PENDING_MIGRATION', which flask-entitydb"
            " does not read (did you mean 'ENTITYDB_PENDING_MIGRATIONS'?); fix its name or"
            " remove it (docs/configuration.md lists the keys).",
        ),
    ],
    ids=["bad-value", "misspelled-key"],
)
def test_flask_cli_prints_one_line_for_bad_config(
    tmp_path: Path, config_line: str, error: str
) -> None:
    (tmp_path / "badapp.py").write_text(
        "from flask import Flask\n"
        "from flask_entitydb import EntityDB\n"
        "def create_app():\n"
        "    app = Flask(__name__)\n"
        f"    {config_line}\n"
        "    EntityDB(app)\n"
        "    return app\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "badapp", "db", "current"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == error
    assert "hunter2" not in result.stdout + result.stderr


def test_importing_the_package_is_cheap() -> None:
    """pytest imports the bundled plugin in every run: that must not pull in Flask or
    SQLAlchemy for test suites that do not use flask-entitydb."""
    code = (
        "import sys, flask_entitydb, flask_entitydb.pytest_plugin\n"
        "heavy = sorted(m for m in ('flask', 'sqlalchemy', 'alembic') if m in sys.modules)\n"
        "print(heavy)\n"
        "from flask_entitydb import EntityDB\n"
        "print(sorted(set(flask_entitydb.__all__) - set(dir(flask_entitydb))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines() == ["[]", "[]"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("mysql+mysqldb://u@localhost:3307/db", "127.0.0.1"),
        ("mariadb+mariadbconnector://u@localhost:3307/db", "127.0.0.1"),
        ("mysql+mysqldb://u@localhost/db", None),  # no port: the socket, as before
        ("mysql+mysqldb://u@localhost:3307/db?unix_socket=/run/my.sock", None),
        ("mysql+pymysql://u@localhost:3307/db", None),  # pymysql uses TCP anyway
    ],
)
def test_localhost_with_a_port_is_tcp(
    make_app: Callable[..., Flask], url: str, host: str | None
) -> None:
    app = make_app(DB_CONNECTION_STRING=url)
    settings = EntityDB(app).state(app).settings
    assert settings.engine_options.get("connect_args", {}).get("host") == host
    assert settings.url.host == "localhost"  # shown as configured
