"""Writes never reach a read replica, and every way of committing counts as the client's
write: on a private MariaDB (GTID) and PostgreSQL (streaming) primary/replica pair.

A replica's connections are read-only at the server, so a write that the routing cannot
recognize (a ``text()``) is refused there and run again on the primary; a write the
routing recognizes (a flush, DML, DDL, ``SELECT ... FOR UPDATE``) goes to the primary
first. Replication is paused to show that the writer reads its write back from the
primary, whichever way it committed.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify
from helpers.replication import AppFactory, Cluster, Note, Views

from flask_entitydb import EntityDB, ReplicaWriteError
from flask_entitydb._engine.cookie import COOKIE_NAME

pytestmark = pytest.mark.slow

INSERT = sa.text("INSERT INTO notes (text) VALUES (:text)")


def _views(cluster: Cluster) -> Views:
    return lambda app, db: _add_views(app, db, cluster)


def _add_views(app: Flask, db: EntityDB, cluster: Cluster) -> None:
    """``GET /write/<how>/<text>``: a write of ``text`` in a ``GET`` view, one way each."""

    @app.get("/write/<how>/<text>")
    def write(how: str, text: str) -> Any:
        if how == "text":  # raw SQL the routing cannot recognize as a write
            db.session.execute(INSERT, {"text": text})
            db.session.commit()
        elif how == "orm":
            db.session.add(Note(text=text))
            db.session.commit()
        elif how == "begin":
            with db.session.begin():
                db.session.add(Note(text=text))
        elif how == "nested":
            with db.session.begin_nested():
                db.session.add(Note(text=text))
            db.session.commit()
        elif how == "connection":  # Core, on the primary's engine
            with db.engine.connect() as connection:
                connection.execute(INSERT, {"text": text})
                connection.commit()
        elif how == "engine_begin":
            with db.engine.begin() as connection:
                connection.execute(INSERT, {"text": text})
        elif how == "session_connection":  # the session's connection: a replica's
            db.session.connection().execute(INSERT, {"text": text})
            db.session.commit()
        return jsonify(port=db.session.execute(sa.text(cluster.port_sql)).scalar())

    @app.get("/locked")
    def locked() -> Any:
        db.session.execute(sa.select(Note).with_for_update())
        return jsonify(port=db.session.execute(sa.text(cluster.port_sql)).scalar())


@pytest.mark.parametrize("how", ["text", "orm"])
def test_a_write_in_a_get_view_reaches_the_primary_never_the_replica(
    cluster: Cluster,
    make_replica_app: AppFactory,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    app = make_replica_app(_views(cluster))
    writer, other = app.test_client(), app.test_client()
    assert writer.get("/notes").get_json()["port"] == cluster.replica.port
    cluster.pause()
    with caplog.at_level(logging.WARNING, logger="flask_entitydb"):
        response = writer.get(f"/write/{how}/get-{how}")
    assert response.status_code == 200, response.text
    assert response.get_json()["port"] == cluster.primary.port  # the rest of the request
    assert cluster.primary_has(f"get-{how}")
    assert not cluster.replica_has(f"get-{how}")  # only replication may bring it there
    assert writer.get_cookie(COOKIE_NAME) is not None  # the client's write is recorded
    assert "is skipped" not in caplog.text  # refusing a write is no failure of the replica
    # the writer reads its write back; another client reads the paused replica
    assert f"get-{how}" in writer.get("/notes").get_json()["texts"]
    assert f"get-{how}" not in other.get("/notes").get_json()["texts"]
    cluster.resume()
    cluster.wait_for_replica(f"get-{how}")
    assert cluster.replicating()  # no duplicate key stopped it


def test_a_write_on_the_sessions_replica_connection_fails_naming_db_primary(
    cluster: Cluster, make_replica_app: AppFactory
) -> None:
    app = make_replica_app(_views(cluster))
    with pytest.raises(ReplicaWriteError, match=r"'with db\.primary\(\):'") as raised:
        app.test_client().get("/write/session_connection/sneaky")
    message = str(raised.value)
    assert "\n" not in message
    assert f"127.0.0.1:{cluster.replica.port}" in message
    assert cluster.replica.app_password not in message
    assert not cluster.primary_has("sneaky")
    assert not cluster.replica_has("sneaky")
    assert cluster.replicating()


def test_replica_connections_are_read_only_at_the_server(
    cluster: Cluster, make_replica_app: AppFactory
) -> None:
    app = make_replica_app()
    with app.app_context():
        replica = app.extensions["sqlalchemy"].engines["~replica1"]
        with replica.connect() as connection:
            with pytest.raises(ReplicaWriteError):
                connection.execute(INSERT, {"text": "direct"})
            connection.rollback()
            # DDL too: the session is read-only, not only the statements we recognize
            with pytest.raises(ReplicaWriteError):
                connection.execute(sa.text("CREATE TABLE not_here (id int)"))
    assert not cluster.replica_has("direct")


def test_select_for_update_in_a_get_goes_to_the_primary(
    cluster: Cluster, make_replica_app: AppFactory
) -> None:
    app = make_replica_app(_views(cluster))
    client = app.test_client()
    assert client.get("/locked").get_json()["port"] == cluster.primary.port
    assert client.get("/notes").get_json()["port"] == cluster.replica.port


@pytest.mark.parametrize(
    ("how", "max_lag"),
    [
        ("begin", None),
        ("begin", 30),
        ("nested", None),
        ("connection", None),
        ("engine_begin", 30),
    ],
)
def test_every_commit_path_is_read_back_by_the_same_client(
    cluster: Cluster, make_replica_app: AppFactory, how: str, max_lag: int | None
) -> None:
    # a long sticky window: reading the write back is the position's doing
    app = make_replica_app(
        _views(cluster), ENTITYDB_REPLICA_STICKY_SECONDS=120, ENTITYDB_REPLICA_MAX_LAG=max_lag
    )
    writer, other = app.test_client(), app.test_client()
    cluster.pause()
    assert writer.get(f"/write/{how}/by-{how}").status_code == 200
    assert writer.get_cookie(COOKIE_NAME) is not None
    seen = writer.get("/notes").get_json()
    assert f"by-{how}" in seen["texts"]
    assert seen["port"] == cluster.primary.port
    if max_lag is None:  # with MAX_LAG the paused replica may be skipped for everyone
        assert f"by-{how}" not in other.get("/notes").get_json()["texts"]
    cluster.resume()
    cluster.wait_for_replica(f"by-{how}")
    cluster.back_on_replica(writer, f"by-{how}")
