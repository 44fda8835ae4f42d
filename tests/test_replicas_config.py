"""Read replica configuration: ``ENTITYDB_REPLICAS``, ``DB_REPLICA_CONNECTION_STRINGS``,
per-bind replicas, and the refusals (no engine connects here)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from flask_entitydb import ConfigurationError, EntityDB

PRIMARY = "postgresql+psycopg://app:secret@primary.example/app"


def test_replicas_from_the_environment_are_prepared_like_the_primary(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DB_REPLICA_CONNECTION_STRINGS",
        "postgresql+psycopg://app:secret@r1.example/app?ssl=true,"
        " postgresql+psycopg://app:secret@r2.example/app",
    )
    app = make_app(SECRET_KEY="k", DB_CONNECTION_STRING=PRIMARY)
    db = EntityDB(app)
    replicas = db.state(app).settings.replicas
    assert [r.url.host for r in replicas] == ["r1.example", "r2.example"]
    alone = make_app(
        DB_CONNECTION_STRING="postgresql+psycopg://app:secret@r1.example/app?ssl=true",
        ENTITYDB_REPLICAS=[],
    )
    assert replicas[0].url == EntityDB(alone).state(alone).settings.url  # as if it were primary
    assert replicas[1].url_source == "URL #2 of DB_REPLICA_CONNECTION_STRINGS in the environment"
    with app.app_context():
        assert db.engine.url.host == "primary.example"  # the primary stays the engine


def test_config_list_wins_over_the_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_REPLICA_CONNECTION_STRINGS", "postgresql+psycopg://app@env/app")
    app = make_app(
        SECRET_KEY="k",
        DB_CONNECTION_STRING=PRIMARY,
        ENTITYDB_REPLICAS=["postgresql+psycopg://app@config/app"],
    )
    replicas = EntityDB(app).state(app).settings.replicas
    assert [r.url.host for r in replicas] == ["config"]


def test_a_bind_with_primary_and_replicas(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        SECRET_KEY="k",
        ENTITYDB_BINDS={
            "analytics": {
                "primary": PRIMARY,
                "replicas": ["postgresql+psycopg://app:secret@r1.example/app"],
                "engine_options": {"pool_size": 3},
            }
        },
    )
    bind = EntityDB(app).state(app).settings.bind("analytics")
    assert bind.primary.url.host == "primary.example"
    assert [r.url.host for r in bind.replicas] == ["r1.example"]
    assert bind.replicas[0].engine_options["pool_size"] == 3


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"ENTITYDB_REPLICAS": ["mysql+mysqldb://app:secret@replica/app"]},
            "'ENTITYDB_REPLICAS' is a 'mysql' database but its primary",
        ),
        ({"ENTITYDB_REPLICAS": "not a list"}, "not a valid database URL"),
        ({"ENTITYDB_REPLICA_STICKY_SECONDS": "soon"}, "'ENTITYDB_REPLICA_STICKY_SECONDS' must"),
        ({"ENTITYDB_REPLICA_MAX_LAG": -1}, "'ENTITYDB_REPLICA_MAX_LAG' must be a number"),
        (
            {"ENTITYDB_BINDS": {"analytics": {"primary": PRIMARY, "replica": []}}},
            "unknown key(s) 'replica'",
        ),
    ],
)
def test_bad_replica_settings_are_refused(
    make_app: Callable[..., Flask], config: dict[str, object], message: str
) -> None:
    app = make_app(SECRET_KEY="k", DB_CONNECTION_STRING=PRIMARY, **config)
    with pytest.raises(ConfigurationError) as caught:
        EntityDB(app)
    assert message in str(caught.value)
    assert "secret" not in str(caught.value)


def test_replicas_need_a_secret_key(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        DB_CONNECTION_STRING=PRIMARY, ENTITYDB_REPLICAS=["postgresql+psycopg://app@r/app"]
    )
    with pytest.raises(ConfigurationError, match="Read replicas need the app's 'SECRET_KEY'"):
        EntityDB(app)
