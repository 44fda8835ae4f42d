"""Property-based tests: every invalid ``DB_CONNECTION_STRING`` or configuration value gives
:class:`ConfigurationError` from ``EntityDB(app)`` (never another exception), a one-line
message and log records without the password, and nothing written anywhere; under the
``flask`` CLI it gives one line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import ast
import json
import logging
import os
import socket
import string
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flask_entitydb import ConfigurationError, EntityDB
from flask_entitydb._settings.tls import FALSE_WORDS, TRUE_WORDS

pytestmark = pytest.mark.filterwarnings("ignore:No entity classes found")

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# -- strategies ---------------------------------------------------------------------------

PASSWORD_CHARS = string.ascii_letters + string.digits + "!$%&*+,;=~-_.@:/?#[]() '\"\\é€"


def _package_strings() -> list[str]:
    """Every string literal of the package's source, lower case: the fixed text of its
    messages. Hypothesis also draws strings from the code under test, so it may draw a
    "password" such as 'environm', which every message naming 'DB_CONNECTION_STRING in
    the environment' contains without leaking anything."""
    import flask_entitydb

    found = []
    for path in Path(flask_entitydb.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append(node.value.lower())
    return found


PACKAGE_STRINGS = _package_strings()


@st.composite
def passwords(draw: st.DrawFn) -> str:
    """Passwords varied enough that finding one in a message cannot be a coincidence:
    five different characters at least, and no part of the package's own text."""
    password = draw(st.text(alphabet=PASSWORD_CHARS, min_size=8, max_size=24))
    assume(len(set(password)) >= 5)
    assume(not any(password.lower() in text for text in PACKAGE_STRINGS))
    return password


def leaked(password: str, text: str) -> bool:
    """Whether ``text`` shows ``password``, as typed or percent-encoded in a URL."""
    return any(form in text for form in {password, quote(password, safe=""), quote_plus(password)})


def mysql_url(
    password: str, *, host: str = "db.invalid", port: str = "3306", query: str = ""
) -> str:
    url = f"mysql+mysqldb://app:{quote(password, safe='')}@{host}:{port}/shop"
    return url + (f"?{query}" if query else "")


identifiers = st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z")
words = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=12)


@st.composite
def invalid_connection_strings(draw: st.DrawFn) -> tuple[str, str]:
    """``(url, password)`` pairs that no database could accept, of every kind we know."""
    pw = draw(passwords())
    kind = draw(st.sampled_from(KINDS))
    if kind == "ssl word":
        word = draw(words.filter(lambda w: w.strip().lower() not in TRUE_WORDS | FALSE_WORDS))
        return mysql_url(pw, query=f"ssl={quote_plus(word)}&charset=utf8mb4"), pw
    if kind == "ssl word, password as a parameter":
        word = draw(words.filter(lambda w: w.strip().lower() not in TRUE_WORDS | FALSE_WORDS))
        key = draw(st.sampled_from(["password", "passwd"]))
        query = f"ssl={quote_plus(word)}&{key}={quote_plus(pw)}"
        return f"mysql+mysqldb://app@db.invalid:3306/shop?{query}", pw
    if kind == "port out of range":
        port = draw(st.one_of(st.integers(65536, 10**6), st.just(0)))
        return mysql_url(pw, port=str(port)), pw
    if kind == "port not a number":
        port = draw(st.from_regex(r"\A[a-z][a-z0-9]{0,6}\Z"))
        return mysql_url(pw, port=port), pw
    if kind == "unknown dialect":
        name = draw(identifiers)
        return f"nodb{name}://app:{quote(pw, safe='')}@db.invalid/x", pw
    if kind == "unknown driver":
        name = draw(identifiers)
        return f"mysql+nodrv{name}://app:{quote(pw, safe='')}@db.invalid/x", pw
    if kind == "ssl on sqlite":
        word = draw(st.sampled_from(sorted(TRUE_WORDS | FALSE_WORDS)))
        return f"sqlite:////nonexistent/app.db?ssl={word}", pw
    if kind == "integer parameter":
        param = draw(st.sampled_from(["connect_timeout", "read_timeout", "write_timeout"]))
        value = draw(st.from_regex(r"\A[a-z][a-z0-9]{0,6}\Z"))
        return mysql_url(pw, query=f"{param}={value}"), pw
    if kind == "unencoded @ in password":
        head = draw(st.text(alphabet=string.ascii_letters + string.digits, min_size=4))
        tail = draw(st.text(alphabet=string.ascii_letters + string.digits, min_size=4))
        raw = f"{head}@{tail}"
        return f"mysql+mysqldb://app:{raw}@db.invalid:3306/shop", raw
    if kind == "ssl=false with a CA":
        return mysql_url(pw, query="ssl=false&ssl_ca=/etc/ca.pem"), pw
    if kind == "unknown ssl_mode":
        mode = draw(words.filter(lambda w: w not in {"DISABLED", "PREFERRED", "REQUIRED"}))
        assume(mode not in {"VERIFY_CA", "VERIFY_IDENTITY"})
        return mysql_url(pw, query=f"ssl_mode={mode}"), pw
    if kind == "postgresql ssl contradiction":
        return (
            f"postgresql+psycopg://app:{quote(pw, safe='')}@db.invalid/x?ssl=true&sslmode=disable",
            pw,
        )
    assert kind == "not a URL"  # a real URL with its '://' mistyped
    scheme = draw(st.sampled_from(["mysql+mysqldb", "postgresql", "mysql", "my sql", ""]))
    separator = draw(st.sampled_from([":/", "//", ":", "", ":\\\\", " "]))
    user = draw(st.sampled_from(["app", ""]))
    return f"{scheme}{separator}{user}:{quote(pw, safe='')}@db.invalid/x", pw


KINDS = [
    "ssl word",
    "ssl word, password as a parameter",
    "port out of range",
    "port not a number",
    "unknown dialect",
    "unknown driver",
    "ssl on sqlite",
    "integer parameter",
    "unencoded @ in password",
    "ssl=false with a CA",
    "unknown ssl_mode",
    "postgresql ssl contradiction",
    "not a URL",
]

not_a_mapping = st.one_of(
    st.integers(), st.text(max_size=10), st.lists(st.integers(), max_size=3), st.booleans()
)
not_a_string_list = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.one_of(st.integers(), st.none(), st.binary(max_size=3)), min_size=1, max_size=3),
)
unknown_option_names = st.from_regex(r"\Axq_[a-z_]{1,12}\Z")

invalid_config = st.one_of(
    st.tuples(st.just("ENTITYDB_ENGINE_OPTIONS"), not_a_mapping),
    st.tuples(
        st.just("ENTITYDB_ENGINE_OPTIONS"),
        st.dictionaries(unknown_option_names, st.integers(), min_size=1, max_size=3),
    ),
    st.tuples(
        st.just("ENTITYDB_ENGINE_OPTIONS"),
        st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
    ),
    st.tuples(
        st.just("ENTITYDB_ENGINE_OPTIONS"),
        st.fixed_dictionaries({"connect_args": st.one_of(st.integers(), st.text(max_size=5))}),
    ),
    st.tuples(
        st.just("ENTITYDB_ENGINE_OPTIONS"),
        st.dictionaries(
            st.sampled_from(["pool_size", "max_overflow", "pool_timeout"]),
            st.from_regex(r"\A[a-z]{1,6}\Z"),
            min_size=1,
        ),
    ),
    st.tuples(st.just("SQLALCHEMY_ENGINE_OPTIONS"), not_a_mapping),
    st.tuples(
        st.just("ENTITYDB_PENDING_MIGRATIONS"),
        st.one_of(
            st.text(max_size=10).filter(lambda v: v not in {"ignore", "warn", "error"}),
            st.integers(),
            st.lists(st.text(max_size=3), max_size=2),
        ),
    ),
    st.tuples(st.just("ENTITYDB_ENTITY_PACKAGES"), not_a_string_list),
    st.tuples(st.just("ENTITYDB_ENTRY_POINTS"), not_a_string_list),
    st.tuples(st.just("ENTITYDB_EXCLUDE_TABLES"), not_a_string_list),
    st.tuples(
        st.just("ENTITYDB_MIGRATIONS_DIR"),
        st.one_of(st.integers(), st.lists(st.text(max_size=3), max_size=2), st.booleans()),
    ),
)


# -- helpers -------------------------------------------------------------------------------


class Records(logging.Handler):
    """Collects every log record (caplog is function-scoped, which hypothesis refuses)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(
            record.getMessage() + (self.format(record) if record.exc_info else "")
            for record in self.records
        )


@contextmanager
def captured_logs() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def assert_refused(config: dict[str, Any], password: str, instance: Path) -> ConfigurationError:
    """``EntityDB(app)`` raises exactly ConfigurationError, one line, no password anywhere."""
    app = Flask("badinput", instance_path=str(instance))
    app.config.update(TESTING=True, **config)
    with captured_logs() as logs:
        try:
            EntityDB(app)
        except ConfigurationError as exc:
            error = exc
        else:
            pytest.fail(f"EntityDB(app) accepted {config!r}")
    assert type(error) is ConfigurationError
    message = str(error)
    assert message and "\n" not in message
    assert not leaked(password, message), message
    assert not leaked(password, repr(error))
    assert not leaked(password, logs.text())
    assert "entitydb" not in app.extensions
    return error


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


# -- properties -------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(case=invalid_connection_strings(), from_env=st.booleans())
def test_invalid_connection_strings(case: tuple[str, str], from_env: bool, scratch: Path) -> None:
    url, password = case
    # the password is in the URL once, as credentials; nowhere else by coincidence
    credentials = quote(password, safe="") if quote(password, safe="") in url else password
    assume(not leaked(password, url.replace(credentials, "", 1)))
    instance = scratch / "instance"
    if from_env:
        os.environ["DB_CONNECTION_STRING"] = url
        try:
            error = assert_refused({}, password, instance)
        finally:
            del os.environ["DB_CONNECTION_STRING"]
    else:
        error = assert_refused({"DB_CONNECTION_STRING": url}, password, instance)
    assert "DB_CONNECTION_STRING" in str(error)
    assert not list(scratch.rglob("*.db")) and not list(scratch.rglob("*.sqlite3"))


@PROPERTY_SETTINGS
@given(item=invalid_config, password=passwords())
def test_invalid_config_values(item: tuple[str, Any], password: str, scratch: Path) -> None:
    key, value = item
    assume(not leaked(password, repr(value)))  # the value itself may be shown
    config = {"DB_CONNECTION_STRING": mysql_url(password), key: value}
    error = assert_refused(config, password, scratch / "instance")
    assert f"'{key}'" in str(error)


@PROPERTY_SETTINGS
@given(item=invalid_config)
def test_invalid_config_never_creates_the_sqlite_default(
    item: tuple[str, Any], scratch: Path
) -> None:
    key, value = item
    instance = scratch / "default-instance"
    assert_refused({key: value}, "no password here", instance)
    assert not list(instance.glob("*.sqlite3"))  # nothing written, not even an empty file


@PROPERTY_SETTINGS
@given(value=st.one_of(st.integers(), st.booleans(), st.just(""), st.lists(st.text(), max_size=2)))
def test_invalid_sqlite_file_name(value: object, scratch: Path) -> None:
    instance = scratch / "sqlite-instance"
    error = assert_refused({"ENTITYDB_SQLITE_FILE": value}, "no password here", instance)
    assert "'ENTITYDB_SQLITE_FILE'" in str(error)
    assert not list(instance.glob("*"))


# -- the CLI ----------------------------------------------------------------------------

CLI_APP = """
import json, os
from flask import Flask
from flask_entitydb import EntityDB

def create_app():
    app = Flask(__name__)
    app.config.update(json.loads(os.environ["TEST_APP_CONFIG"]))
    EntityDB(app)
    return app
"""


def db_subcommand() -> str:
    """``current`` once ``flask db current`` exists, else a command that exists now."""
    import click

    from flask_entitydb.cli import db_group

    for name in ("current", "heads", "entities"):
        if name in db_group.list_commands(click.Context(db_group)):
            return name
    pytest.skip("no 'flask db' subcommand exists yet")


@pytest.fixture(scope="module")
def cli_app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cliapp")
    (d / "badapp.py").write_text(CLI_APP)
    return d


def run_flask(
    app_dir: Path, config: dict[str, Any], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DB_CONNECTION_STRING", "FLASK_APP"}}
    env["TEST_APP_CONFIG"] = json.dumps(config)
    env["PYTHONPATH"] = str(app_dir)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "badapp:create_app", *args],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


CLI_CASES = [
    pytest.param(
        {"DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@db.invalid/x?ssl=maybe"}, id="ssl-word"
    ),
    pytest.param(
        {"DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@db.invalid:99999/x"}, id="port"
    ),
    pytest.param({"DB_CONNECTION_STRING": "nodb://app:{pw}@db.invalid/x"}, id="dialect"),
    pytest.param(
        {"DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@db.invalid/x?connect_timeout=soon"},
        id="parameter",
    ),
    pytest.param(
        {
            "DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@db.invalid/x",
            "ENTITYDB_ENGINE_OPTIONS": {"pool_sise": 5},
        },
        id="engine-option",
    ),
    pytest.param(
        {
            "DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@db.invalid/x",
            "ENTITYDB_PENDING_MIGRATIONS": "sometimes",
        },
        id="pending-policy",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("template", CLI_CASES)
def test_cli_gives_one_line_and_non_zero_exit(template: dict[str, Any], cli_app_dir: Path) -> None:
    password = "Cli-S3cret-pw!"
    config = json.loads(json.dumps(template).replace("{pw}", quote(password, safe="")))
    result = run_flask(cli_app_dir, config, "db", db_subcommand())
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert not leaked(password, result.stderr + result.stdout)


# -- refused at start-up, not at the first connection -------------------------------------

STARTUP_CASES = [
    pytest.param(
        {"DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@127.0.0.1/x?SSL=true"},
        "passes 'SSL' to the 'mysql+mysqldb' driver, which does not take it (did you mean 'ssl'?)",
        id="upper-case-ssl",
    ),
    pytest.param(
        {"DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@127.0.0.1/x?bogus=1"},
        "passes 'bogus' to the 'mysql+mysqldb' driver, which does not take it",
        id="unknown-parameter",
    ),
    pytest.param(
        {"DB_CONNECTION_STRING": "postgresql+psycopg://app:{pw}@127.0.0.1/x?bogus=1"},
        "passes 'bogus' to the 'postgresql+psycopg' driver",
        id="unknown-parameter-psycopg",
    ),
    pytest.param(
        {"DB_CONNECTION_STRING": "postgresql+psycopg2://app:{pw}@127.0.0.1/x?bogus=1"},
        "passes 'bogus' to the 'postgresql+psycopg2' driver",
        id="unknown-parameter-psycopg2",
    ),
    pytest.param(
        {"DB_CONNECTION_STRING": "postgresql+pg8000://app:{pw}@127.0.0.1/x?sslmode=require"},
        "passes 'sslmode' to the 'postgresql+pg8000' driver, which does not take it",
        id="pg8000-sslmode",
    ),
    pytest.param(
        {"DB_CONNECTION_STRING": "mariadb+mariadbconnector://app:{pw}@127.0.0.1/x?charset=utf8"},
        "passes 'charset' to the 'mariadb+mariadbconnector' driver, which does not take it",
        id="mariadb-charset",
    ),
    pytest.param(
        {
            "DB_CONNECTION_STRING": "mysql+pymysql://app:{pw}@127.0.0.1/x",
            "ENTITYDB_ENGINE_OPTIONS": {"connect_args": {"ssl_mode": "REQUIRED"}},
        },
        "'ENTITYDB_ENGINE_OPTIONS' passes 'ssl_mode' to the 'mysql+pymysql' driver, which does"
        " not take it",
        id="pymysql-ssl-mode",
    ),
    pytest.param(
        {
            "DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@127.0.0.1/x",
            "ENTITYDB_ENGINE_OPTIONS": {"pool_timeout": float("inf")},
        },
        "'ENTITYDB_ENGINE_OPTIONS' has 'pool_timeout': inf; use a finite number",
        id="pool-timeout-inf",
    ),
    pytest.param(
        {
            "DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@127.0.0.1/x",
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_timeout": "inf"},
        },
        "'SQLALCHEMY_ENGINE_OPTIONS' has 'pool_timeout': 'inf'; use a finite number",
        id="pool-timeout-inf-string",
    ),
    pytest.param(
        {"DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@127.0.0.1/x?ssl=true&ssl=false"},
        "gives the parameter 'ssl' more than once",
        id="repeated-ssl",
    ),
    pytest.param(
        {"DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@127.0.0.1/x?ssl_verify=false"},
        "has 'ssl_verify' without 'ssl=true'",
        id="ssl-verify-alone",
    ),
    pytest.param(
        {"DB_CONNECTION_STRING": "mysql+mysqldb://app:{pw}@127.0.0.1/x?ssl=true&ssl_mode=REQUIRED"},
        "sets both 'ssl=true' and 'ssl_mode=REQUIRED'",
        id="ssl-true-ssl-mode-required",
    ),
    pytest.param(
        {
            "DB_CONNECTION_STRING": "postgresql+psycopg://app:{pw}@127.0.0.1/x?ssl=true&sslmode=require"
        },
        "sets both 'ssl=true' and 'sslmode=require'",
        id="ssl-true-sslmode-require",
    ),
    *(
        pytest.param(
            {
                "DB_CONNECTION_STRING": "postgresql+psycopg://app:{pw}@127.0.0.1/x?ssl=true",
                key: {"connect_args": {"sslmode": mode}},
            },
            f"'{key}' sets 'connect_args' 'sslmode' while DB_CONNECTION_STRING in the app config"
            " has 'ssl='",
            id=f"{key}-sslmode-{mode}",
        )
        for key in ("SQLALCHEMY_ENGINE_OPTIONS", "ENTITYDB_ENGINE_OPTIONS")
        for mode in ("prefer", "allow", "disable")
    ),
    pytest.param(
        {
            "DB_CONNECTION_STRING": "mysql+pymysql://app:{pw}@127.0.0.1/x?ssl=true",
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"ssl_disabled": True}},
        },
        "'SQLALCHEMY_ENGINE_OPTIONS' sets 'connect_args' 'ssl_disabled'",
        id="mysql-ssl-disabled-connect-arg",
    ),
]


@pytest.mark.parametrize(("config", "message"), STARTUP_CASES)
def test_refused_at_start_up(config: dict[str, Any], message: str, scratch: Path) -> None:
    password = "St4rt-up-pw!"
    config = {
        key: value.replace("{pw}", quote(password, safe="")) if isinstance(value, str) else value
        for key, value in config.items()
    }
    error = assert_refused(config, password, scratch / "instance")
    assert message in str(error)


@pytest.mark.parametrize(
    "raw",
    [
        "mysql+mysqldb://u9k:Pq7@Zx8/Wv9@127.0.0.1:3306/shop",
        "mysql+mysqldb://u9k:Pq7@Zx8?Wv9@127.0.0.1:3306/shop",
        "mysql+mysqldb://u9k:Pq7@Zx8@127.0.0.1:3306/shop",
        "postgresql+psycopg://u9k:Pq7@Zx8/W@v9@127.0.0.1/shop?sslmode=disable",
        "mysql+mysqldb://u9k@Pq7:Zx8/Wv9@127.0.0.1/shop",
        "mysql+mysqldb://u9k:Pq7@Zx8/Wv9@127.0.0.1/shop?application_name=a@b",
    ],
)
def test_unencoded_at_in_the_user_info_is_caught_and_never_echoed(raw: str, scratch: Path) -> None:
    error = assert_refused({"DB_CONNECTION_STRING": raw}, "Pq7@Zx8", scratch / "instance")
    message = str(error)
    assert "has an '@' in its user name or password" in message
    for part in ("u9k", "Pq7", "Zx8", "Wv9"):
        assert part not in message, message


def test_unparseable_connection_string_is_masked(scratch: Path) -> None:
    error = assert_refused(
        {"DB_CONNECTION_STRING": "mysql+mysqldb//root:s3cr3t@db/app"}, "s3cr3t", scratch / "i"
    )
    # nothing of a value that does not parse is shown past its scheme: its length, and why
    assert (
        "(a value of 33 characters starting 'mysql+mysqldb//' (a scheme ends with '://'))"
        in str(error)
    )
    assert "root" not in str(error)


# -- secrets in every position never shown: flask output, DEBUG logs, repr ---------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@st.composite
def urls_with_a_secret(draw: st.DrawFn) -> tuple[str, str]:
    """``(connection string, secret)``: the secret as the password (encoded or typed
    raw), as a query parameter, in a fragment, or in a string that does not parse."""
    secret = "Zq9" + draw(passwords())  # never a word of a message by coincidence
    scheme = draw(st.sampled_from(["mysql+mysqldb", "postgresql+psycopg"]))
    where = f"127.0.0.1:{closed_port()}/shop"
    position = draw(
        st.sampled_from(
            [
                "password",
                "raw password",
                "query",
                "postgresql user and password",
                "fragment",
                "malformed",
            ]
        )
    )
    if position == "password":
        return f"{scheme}://app:{quote(secret, safe='')}@{where}", secret
    if position == "raw password":
        return f"{scheme}://app:{secret}@{where}", secret
    if position == "query":
        key = draw(st.sampled_from(["password", "passwd"]))
        return f"{scheme}://app@{where}?{key}={quote_plus(secret)}", secret
    if position == "postgresql user and password":
        return f"postgresql+psycopg://{where}?user=app&password={quote_plus(secret)}", secret
    if position == "fragment":
        tail = draw(st.sampled_from(["#{}", "?connect_timeout=5#{}", "#password={}"]))
        return f"{scheme}://app@{where}" + tail.format(quote(secret, safe="")), secret
    separator = draw(st.sampled_from([":/", "//", ":", "", " "]))
    return f"{scheme}{separator}app:{quote(secret, safe='')}@{where}", secret


@pytest.fixture(scope="module")
def migrations_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("masking") / "migrations"
    app = Flask("masking", instance_path=str(folder.parent / "instance"))
    app.config.update(
        DB_CONNECTION_STRING=f"sqlite:///{folder.parent}/x.db",
        ENTITYDB_MIGRATIONS_DIR=str(folder),
    )
    EntityDB(app)
    assert app.test_cli_runner().invoke(args=["db", "init"]).exit_code == 0
    return folder


@PROPERTY_SETTINGS
@given(case=urls_with_a_secret())
def test_secret_never_in_flask_output_logs_or_repr(
    case: tuple[str, str], migrations_folder: Path
) -> None:
    url, secret = case
    assume(not leaked(secret, url.replace(secret, "").replace(quote(secret, safe=""), "")))
    app = Flask("masking", instance_path=str(migrations_folder.parent / "instance"))
    app.config.update(DB_CONNECTION_STRING=url, ENTITYDB_MIGRATIONS_DIR=str(migrations_folder))
    shown: list[str] = []
    with captured_logs() as logs:
        try:
            db = EntityDB(app)
        except ConfigurationError as error:
            shown += [str(error), repr(error)]
        else:
            shown.append(repr(db))
            for args in (["db", "current", "-v"], ["db", "current"]):
                result = app.test_cli_runner().invoke(args=args)
                assert result.exit_code == 1
                shown.append(result.output)
            with app.app_context():
                with pytest.raises(sa.exc.DBAPIError):
                    db.session.execute(sa.text("SELECT 1"))
                db.session.rollback()
                db.engine.dispose()
    shown.append(logs.text())
    for text in shown:
        assert not leaked(secret, text), text


@pytest.mark.postgresql
def test_query_password_masked_in_current_verbose_and_repr_postgresql(tmp_path: Path) -> None:
    from helpers.databases import create_database

    url, drop = create_database("postgresql", tmp_path)
    password = "Qp-S3cret-pw"
    base = sa.make_url(url)
    # the test server trusts 127.0.0.1: the password is accepted and unused
    raw = (
        f"postgresql+psycopg://{base.host}:{base.port}/{base.database}"
        f"?user={base.username}&password={password}"
    )
    try:
        app = Flask("masking", instance_path=str(tmp_path / "instance"))
        app.config.update(DB_CONNECTION_STRING=raw, ENTITYDB_MIGRATIONS_DIR=str(tmp_path / "m"))
        with captured_logs() as logs:
            db = EntityDB(app)
            runner = app.test_cli_runner()
            assert runner.invoke(args=["db", "init"]).exit_code == 0
            result = runner.invoke(args=["db", "current", "-v"])
            with app.app_context():
                shown = repr(db)
                db.engine.dispose()
        assert result.exit_code == 0, result.output
        assert "password=***" in result.output
        assert "password=***" in shown
        for text in (result.output, shown, logs.text()):
            assert password not in text
    finally:
        drop()
