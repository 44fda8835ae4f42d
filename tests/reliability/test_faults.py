"""Server-side faults on a private MariaDB: killed connections, idle timeouts and a server
crash-restart in the middle of a bounded load. Requests go through the Flask test client."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask, request
from helpers.entities import new_base
from helpers.servers import MariaDBServer
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from flask_entitydb import EntityDB

pytestmark = [
    pytest.mark.private_server,
    pytest.mark.filterwarnings("ignore:No entity classes found"),
]

FIGURES_FILE = os.environ.get("ENTITYDB_RELIABILITY_FIGURES")
"""If set, the restart test writes its figures (JSON) to this file for the docs."""


Base = new_base()


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)


def items_app(make_app: Callable[..., Flask], url: str, **config: object) -> tuple[Flask, EntityDB]:
    """An app with ``/conn`` (the server connection id), ``POST /items`` and ``/items``."""
    app = make_app(DB_CONNECTION_STRING=url, **config)
    db = EntityDB(app, base=Base)
    with app.app_context():
        db.create_all()

    @app.get("/conn")
    def conn() -> str:
        return str(db.session.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one())

    @app.post("/items")
    def add() -> tuple[str, int]:
        item = Item(token=request.form["token"])
        db.session.add(item)
        db.session.commit()
        return str(item.id), 201

    @app.get("/items")
    def count() -> str:
        return str(db.session.scalar(sa.select(sa.func.count()).select_from(Item)))

    return app, db


def live_connection_ids(server: MariaDBServer) -> set[int]:
    rows = server.execute("SELECT id FROM information_schema.processlist WHERE user = 'app'")
    return {int(row[0]) for row in rows}


def test_killed_pooled_connection_is_replaced(
    make_app: Callable[..., Flask],
    private_mariadb: MariaDBServer,
    private_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, db = items_app(make_app, private_mariadb.app_url(private_database))
    client = app.test_client()
    first = int(client.get("/conn").text)
    assert first in live_connection_ids(private_mariadb)  # pooled, idle, alive

    private_mariadb.execute(f"KILL {first}")
    assert first not in live_connection_ids(private_mariadb)

    caplog.set_level(logging.WARNING)
    response = client.get("/items")
    assert response.status_code == 200, response.text
    assert response.text == "0"
    second = int(client.get("/conn").text)
    assert second != first
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    with app.app_context():
        assert db.engine.pool.checkedout() == 0


def test_killing_every_pooled_connection(
    make_app: Callable[..., Flask], private_mariadb: MariaDBServer, private_database: str
) -> None:
    app, db = items_app(make_app, private_mariadb.app_url(private_database))
    # hold three connections at once so the pool keeps three
    with app.app_context():
        held = [db.engine.connect() for _ in range(3)]
        ids = {c.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one() for c in held}
        for c in held:
            c.close()
    for conn_id in ids:
        private_mariadb.execute(f"KILL {conn_id}")
    client = app.test_client()
    for n in range(6):
        assert client.post("/items", data={"token": f"t{n}"}).status_code == 201
    assert client.get("/items").text == "6"
    assert not ids & {int(client.get("/conn").text)}


def test_without_liveness_the_killed_connection_reaches_the_view(
    make_app: Callable[..., Flask], private_mariadb: MariaDBServer, private_database: str
) -> None:
    # the control experiment: the fault is real, only ENTITYDB_LIVENESS hides it
    app, _ = items_app(
        make_app,
        private_mariadb.app_url(private_database),
        ENTITYDB_LIVENESS="none",
    )
    client = app.test_client()
    private_mariadb.execute(f"KILL {int(client.get('/conn').text)}")
    with pytest.raises(sa.exc.OperationalError, match=r"gone away|Lost connection"):
        client.get("/items")


@pytest.mark.slow
def test_connection_idle_past_wait_timeout(
    make_app: Callable[..., Flask],
    private_mariadb: MariaDBServer,
    private_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wait_timeout = private_mariadb.execute("SELECT @@GLOBAL.wait_timeout")[0][0]
    assert int(wait_timeout) == 2
    app, _ = items_app(make_app, private_mariadb.app_url(private_database))
    client = app.test_client()
    first = int(client.get("/conn").text)
    deadline = time.monotonic() + 30
    while first in live_connection_ids(private_mariadb):  # the server closes it itself
        assert time.monotonic() < deadline, "the server never closed the idle connection"
        time.sleep(0.25)

    caplog.set_level(logging.WARNING)
    assert client.post("/items", data={"token": "after-idle"}).status_code == 201
    assert client.get("/items").text == "1"
    assert int(client.get("/conn").text) != first
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- crash-restart under load ------------------------------------------------------------

THREADS = 4
REQUESTS_PER_THREAD = 150
PACING = 0.01  # seconds between two requests of one thread
DOWN_SECONDS = 1.0


@dataclass
class Outcome:
    started: float
    ended: float
    kind: str  # "write" or "read"
    token: str | None
    status: int


def run_client(app: Flask, worker: int, outcomes: list[Outcome], lock: threading.Lock) -> None:
    client = app.test_client()
    for n in range(REQUESTS_PER_THREAD):
        write = n % 3 != 2
        token = f"w{worker}-{n}-{uuid.uuid4().hex[:8]}" if write else None
        started = time.monotonic()
        response = client.post("/items", data={"token": token}) if write else client.get("/items")
        kind = "write" if write else "read"
        outcome = Outcome(started, time.monotonic(), kind, token, response.status_code)
        with lock:
            outcomes.append(outcome)
        time.sleep(PACING)


@pytest.mark.slow
def test_server_crash_restart_under_load(
    make_app: Callable[..., Flask],
    private_mariadb: MariaDBServer,
    private_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, db = items_app(
        make_app,
        private_mariadb.app_url(private_database),
        # failing views answer 500 and are logged, like in production
        PROPAGATE_EXCEPTIONS=False,
        ENTITYDB_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}},
    )
    caplog.set_level(logging.INFO)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    workers = [
        threading.Thread(target=run_client, args=(app, w, outcomes, lock), daemon=True)
        for w in range(THREADS)
    ]
    for worker in workers:
        worker.start()
    while len(outcomes) < THREADS * REQUESTS_PER_THREAD // 5:
        time.sleep(0.01)

    went_down = time.monotonic()
    private_mariadb.restart(crash=True, down_seconds=DOWN_SECONDS)  # SIGKILL, then start
    back_up = time.monotonic()
    for worker in workers:
        worker.join(timeout=120)
        assert not worker.is_alive()

    total = len(outcomes)
    before = [o for o in outcomes if o.ended < went_down]
    after = [o for o in outcomes if o.started > back_up]
    settled = {id(o) for o in before} | {id(o) for o in after}
    during = [o for o in outcomes if id(o) not in settled]
    failed = [o for o in outcomes if o.status >= 500]
    assert total == THREADS * REQUESTS_PER_THREAD
    assert {o.status for o in outcomes} <= {200, 201, 500}
    assert all(o.status in (200, 201) for o in before), "a request failed before the crash"
    assert after, "no request was sent after the server was back; raise REQUESTS_PER_THREAD"
    assert all(o.status in (200, 201) for o in after), "a request failed after recovery"
    assert failed, "no request failed: the server was not really down"
    assert all(id(o) not in settled for o in failed)

    with app.app_context():
        assert db.engine.pool.checkedout() == 0  # no connection leaked
    acknowledged = {o.token for o in outcomes if o.status == 201}
    sent = {o.token for o in outcomes if o.kind == "write"}
    with private_mariadb.admin().connect() as conn:
        stored = set(conn.execute(sa.text(f"SELECT token FROM {private_database}.items")).scalars())
        open_trx = conn.execute(sa.text("SELECT COUNT(*) FROM information_schema.innodb_trx"))
        assert open_trx.scalar_one() == 0
    assert acknowledged <= stored, "a write acknowledged to a client was lost"
    assert stored <= sent

    # one clear line from flask-entitydb per failure, never a password
    ours = [r for r in caplog.records if r.name == "flask_entitydb" and r.levelno >= logging.ERROR]
    assert ours
    assert all(
        r.getMessage().startswith(("Cannot connect to the database", "Lost the connection"))
        for r in ours
    )
    assert all(":***@127.0.0.1" in r.getMessage() for r in ours)
    for record in caplog.records:
        text = record.getMessage() + (caplog.text if record.exc_info else "")
        assert private_mariadb.app_password not in text

    figures = {
        "requests": total,
        "threads": THREADS,
        "writes_sent": len(sent),
        "overlapping_the_outage": len(during),
        "failed_while_down": len(failed),
        "recovered_after_restart": len(after),
        "succeeded": total - len(failed),
        "acknowledged_writes": len(acknowledged),
        "rows_stored": len(stored),
        "acknowledged_lost": len(acknowledged - stored),
        "leaked_connections": 0,
        "down_seconds": round(back_up - went_down, 2),
        "log_lines": sorted({r.getMessage().split(":")[0] for r in ours}),
        "example_log_line": ours[0].getMessage(),
    }
    if FIGURES_FILE:
        Path(FIGURES_FILE).write_text(json.dumps(figures, indent=2) + "\n")
    print("restart figures:", figures)
