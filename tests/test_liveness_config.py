"""``ENTITYDB_LIVENESS`` and ``ENTITYDB_LIVENESS_PING_IDLE``: defaults per backend, the
explicit ``pool_pre_ping`` that wins, and one-line errors. No database is reached."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_entitydb import ConfigurationError, EntityDB

pytestmark = pytest.mark.filterwarnings("ignore:No entity classes found")

MYSQL = "mysql+mysqldb://app:secret@db.example:3306/shop"
POSTGRESQL = "postgresql+psycopg://app:secret@db.example:5432/shop"


def settings(make_app: Callable[..., Flask], url: str | None, **config: Any) -> Any:
    if url is not None:
        config["DB_CONNECTION_STRING"] = url
    app = make_app(**config)
    return EntityDB(app).state(app).settings


@pytest.mark.parametrize("url", [MYSQL, POSTGRESQL])
def test_retry_is_the_default_on_servers_without_pre_ping(
    make_app: Callable[..., Flask], url: str
) -> None:
    s = settings(make_app, url)
    assert (s.liveness, s.liveness_ping_idle) == ("retry", 60.0)
    assert "pool_pre_ping" not in s.engine_options


def test_sqlite_needs_none(make_app: Callable[..., Flask]) -> None:
    assert settings(make_app, None).liveness == "none"


def test_ping_sets_pool_pre_ping(make_app: Callable[..., Flask]) -> None:
    app = make_app(DB_CONNECTION_STRING=MYSQL, ENTITYDB_LIVENESS="ping")
    db = EntityDB(app)
    assert db.state(app).settings.liveness == "ping"
    with app.app_context():
        assert db.engine.pool._pre_ping is True


def test_each_bind_gets_its_backends_policy(make_app: Callable[..., Flask], tmp_path: Any) -> None:
    s = settings(
        make_app,
        MYSQL,
        ENTITYDB_BINDS={
            "reports": POSTGRESQL,
            "cache": f"sqlite:///{tmp_path / 'cache.sqlite3'}",
            "legacy": {"primary": POSTGRESQL, "engine_options": {"pool_pre_ping": True}},
        },
    )
    policies = {key: s.liveness_of(s.bind(key).primary) for key in s.bind_keys}
    assert policies == {None: "retry", "reports": "retry", "cache": "none", "legacy": "ping"}


@pytest.mark.parametrize("key", ["ENTITYDB_ENGINE_OPTIONS", "SQLALCHEMY_ENGINE_OPTIONS"])
def test_explicit_pre_ping_wins_over_the_default(make_app: Callable[..., Flask], key: str) -> None:
    s = settings(make_app, POSTGRESQL, **{key: {"pool_pre_ping": True}})
    assert s.liveness == "ping"
    assert s.engine_options["pool_pre_ping"] is True
    s = settings(make_app, POSTGRESQL, **{key: {"pool_pre_ping": False}})
    assert s.liveness == "retry"  # no ping, as asked; the retry costs no round trip
    assert s.engine_options["pool_pre_ping"] is False


def test_none_and_idle_ping_off(make_app: Callable[..., Flask]) -> None:
    s = settings(make_app, MYSQL, ENTITYDB_LIVENESS="none", ENTITYDB_LIVENESS_PING_IDLE=None)
    assert (s.liveness, s.liveness_ping_idle) == ("none", None)
    assert "pool_pre_ping" not in s.engine_options


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ENTITYDB_LIVENESS": "sometimes"}, "'ENTITYDB_LIVENESS' is 'sometimes'; use"),
        (
            {"ENTITYDB_LIVENESS": "ping", "ENTITYDB_ENGINE_OPTIONS": {"pool_pre_ping": False}},
            "'ENTITYDB_LIVENESS' is 'ping' but the engine options of"
            " 'mysql+mysqldb://app:***@db.example:3306/shop?charset=utf8mb4' set"
            " 'pool_pre_ping': False",
        ),
        (
            {"ENTITYDB_LIVENESS": "none", "ENTITYDB_ENGINE_OPTIONS": {"pool_pre_ping": True}},
            "'ENTITYDB_LIVENESS' is 'none' but the engine options of 'mysql+mysqldb://app:***@",
        ),
        ({"ENTITYDB_LIVENESS_PING_IDLE": -1}, "'ENTITYDB_LIVENESS_PING_IDLE' is -1; use"),
        ({"ENTITYDB_LIVENESS_PING_IDLE": "60"}, "'ENTITYDB_LIVENESS_PING_IDLE' is '60'; use"),
    ],
)
def test_bad_values_are_one_line_errors(
    make_app: Callable[..., Flask], config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        settings(make_app, MYSQL, **config)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
    assert "secret" not in str(raised.value)
