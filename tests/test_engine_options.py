"""Engine option values are checked at start-up: a value SQLAlchemy or the driver would
refuse at the first connection (or later) is one line naming the option, and a random
value that passes ``init_app`` connects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_entitydb import ConfigurationError, EntityDB

MYSQL = "mysql+mysqldb://root:s3cret@127.0.0.1:3306/app"


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        (None, {"pool_recycle": None}, "'ENTITYDB_ENGINE_OPTIONS' has 'pool_recycle': None;"),
        (None, {"pool_size": float("inf")}, "'ENTITYDB_ENGINE_OPTIONS' has 'pool_size': inf;"),
        (None, {"pool_size": "many"}, "'ENTITYDB_ENGINE_OPTIONS' has 'pool_size': 'many';"),
        (None, {"pool_pre_ping": "sometimes"}, "has 'pool_pre_ping': 'sometimes'; use True"),
        (
            None,
            {"isolation_level": "READ-COMMITTED"},
            "has 'isolation_level': 'READ-COMMITTED'; use one of",
        ),
        (
            MYSQL,
            {"isolation_level": "READ-COMMITTED"},
            "'READ COMMITTED'",
        ),
        (
            MYSQL,
            {"connect_args": {"connect_timeout": "10"}},
            "has 'connect_args' 'connect_timeout': '10'; the 'mysql+mysqldb' driver takes a"
            " whole number (10)",
        ),
        (None, {"execution_options": []}, "has 'execution_options': []; use a dict"),
        (None, {"echo": "loud"}, "has 'echo': 'loud'; use True, False or 'debug'"),
    ],
)
def test_bad_option_values_are_one_line_naming_the_option(
    make_app: Callable[..., Flask], url: str | None, options: dict[str, Any], message: str
) -> None:
    config: dict[str, Any] = {"ENTITYDB_ENGINE_OPTIONS": options}
    if url:
        config["DB_CONNECTION_STRING"] = url
    app = make_app(**config)
    with pytest.raises(ConfigurationError) as info:
        EntityDB(app)
    text = str(info.value)
    assert message in text
    assert "\n" not in text and "s3cret" not in text


def test_pool_size_inf_does_not_talk_about_pool_timeout(make_app: Callable[..., Flask]) -> None:
    app = make_app(ENTITYDB_ENGINE_OPTIONS={"pool_size": float("inf")})
    with pytest.raises(ConfigurationError) as info:
        EntityDB(app)
    assert "pool_timeout" not in str(info.value)


def test_good_values_as_config_files_give_them(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        ENTITYDB_ENGINE_OPTIONS={
            "pool_recycle": "600",
            "pool_size": "3",
            "pool_pre_ping": True,
            "isolation_level": "SERIALIZABLE",
            "echo": False,
        }
    )
    db = EntityDB(app)
    with app.app_context():
        assert db.session.execute(sa.text("select 1")).scalar() == 1


OPTION_NAMES = [
    "pool_size",
    "max_overflow",
    "pool_timeout",
    "pool_recycle",
    "pool_pre_ping",
    "pool_use_lifo",
    "pool_reset_on_return",
    "isolation_level",
    "echo",
    "echo_pool",
    "hide_parameters",
    "execution_options",
    "query_cache_size",
    "connect_args",
    "logging_name",
    "pool_logging_name",
    "insertmanyvalues_page_size",
]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=50),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "10", "-1", "true", "debug", "READ COMMITTED", "AUTOCOMMIT", "x"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["timeout", "x", "check_same_thread"]), st.integers(0, 5)),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(options=st.dictionaries(st.sampled_from(OPTION_NAMES), VALUES, max_size=3))
def test_random_options_either_fail_at_init_app_or_work(
    make_app: Callable[..., Flask], options: dict[str, Any]
) -> None:
    app = make_app(ENTITYDB_ENGINE_OPTIONS=options)
    try:
        db = EntityDB(app)
    except ConfigurationError as error:
        assert "\n" not in str(error)
        return
    with app.app_context():
        try:
            for _ in range(2):  # a checkout from the pool as well
                assert db.session.execute(sa.text("select 1")).scalar() == 1
                db.session.commit()
                db.session.remove()
        except ConfigurationError as error:
            # a connect() argument sqlite3 refuses (no start-up check of its keywords yet)
            assert "\n" not in str(error) and "driver refused the connection argument" in str(error)
        finally:
            db.engine.dispose()


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ("ssl-verify-server-cert=0", "url"),
        ("ssl_verify_server_cert = false", "connect_args"),
        ("skip-ssl", "url"),
        ("ssl-mode=REQUIRED", "url"),
        ("loose-ssl-verify-server-cert=OFF", "url"),
        ("!include weak.cnf", "url"),
    ],
)
def test_an_option_file_cannot_weaken_ssl_true(
    make_app: Callable[..., Flask], tmp_path: Path, setting: str, where: str
) -> None:
    (tmp_path / "weak.cnf").write_text("[client]\nssl-verify-server-cert=0\n")
    cnf = tmp_path / "my.cnf"
    cnf.write_text(f"[client]\nuser=root\n{setting}\n")
    url = "mysql+mysqldb://root:s3cret@127.0.0.1:3306/app?ssl=true"
    config: dict[str, Any] = {"DB_CONNECTION_STRING": url}
    if where == "url":
        config["DB_CONNECTION_STRING"] = f"{url}&read_default_file={cnf}"
    else:
        config["ENTITYDB_ENGINE_OPTIONS"] = {"connect_args": {"read_default_file": str(cnf)}}
    app = make_app(**config)
    with pytest.raises(ConfigurationError) as info:
        EntityDB(app)
    text = str(info.value)
    assert "would turn TLS or its certificate check off" in text
    assert "line 2" in text or "line 3" in text
    assert "s3cret" not in text


def test_an_option_file_that_keeps_tls_is_fine(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    cnf = tmp_path / "my.cnf"
    cnf.write_text("[client]\nuser=root\nssl-verify-server-cert=1\n")
    url = f"mysql+mysqldb://root@127.0.0.1:3306/app?ssl=true&read_default_file={cnf}"
    EntityDB(make_app(DB_CONNECTION_STRING=url))
    missing = f"mysql+mysqldb://root@127.0.0.1:3306/app?ssl=true&read_default_file={cnf}.nope"
    with pytest.raises(ConfigurationError, match="cannot be read to check"):
        EntityDB(make_app(DB_CONNECTION_STRING=missing))
