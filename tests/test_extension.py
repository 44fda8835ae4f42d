"""EntityDB on real databases: registration, per-request sessions, Flask-SQLAlchemy helpers."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask, abort, request
from helpers.databases import create_database
from helpers.entities import new_base
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from flask_entitydb import Entity, EntityDB

Base = new_base()


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100), unique=True)


def make_notes_app(make_app: Callable[..., Flask], url: str) -> tuple[Flask, EntityDB]:
    app = make_app(DB_CONNECTION_STRING=url)
    db = EntityDB(app, base=Base)

    @app.get("/notes/<int:note_id>")
    def read(note_id: int) -> str:
        return db.get_or_404(Note, note_id).title

    @app.post("/notes")
    def write() -> str:
        note = Note(title=request.form["title"])
        db.session.add(note)
        db.session.commit()
        return str(note.id)

    @app.post("/notes/fail")
    def write_then_fail() -> str:
        db.session.add(Note(title=request.form["title"]))
        db.session.flush()  # the row reaches the database inside the transaction
        abort(500)

    @app.post("/notes/raise")
    def write_then_raise() -> str:
        db.session.add(Note(title=request.form["title"]))
        db.session.flush()
        raise RuntimeError("view failed after writing")

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    @app.get("/page")
    def page() -> dict[str, object]:
        result = db.paginate(sa.select(Note).order_by(Note.id), per_page=2)
        return {"titles": [n.title for n in result.items], "total": result.total}

    with app.app_context():
        db.create_all()
    return app, db


@pytest.fixture
def notes(make_app: Callable[..., Flask], database_url: str) -> Iterator[tuple[Flask, EntityDB]]:
    app, db = make_notes_app(make_app, database_url)
    yield app, db
    with app.app_context():
        db.drop_all()


def count_rows(app: Flask, db: EntityDB) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Note)) or 0


def open_transactions(app: Flask, db: EntityDB, backend: str) -> int:
    """Transactions the server sees open, other than the one asking."""
    with app.app_context(), db.engine.connect() as conn:
        if backend == "mysql":
            sql = (
                "SELECT COUNT(*) FROM information_schema.innodb_trx t"
                " JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id"
                " WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID()"
            )
        elif backend == "postgresql":
            sql = (
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            )
        else:
            return 0
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_extension_registered_per_app(make_app: Callable[..., Flask], tmp_path: object) -> None:
    db = EntityDB()
    first, second = make_app("first"), make_app("second")
    db.init_app(first)
    db.init_app(second)
    assert first.extensions["entitydb"].db is db
    assert first.extensions["entitydb"] is not second.extensions["entitydb"]
    with first.app_context():
        first_url = db.engine.url
    with second.app_context():
        assert db.engine.url != first_url
    assert db.base is Entity


def test_second_registration_is_an_error(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    db = EntityDB(app)
    with pytest.raises(RuntimeError, match="already been registered on this Flask app"):
        db.init_app(app)


def test_unregistered_app_is_a_clear_error(make_app: Callable[..., Flask]) -> None:
    db = EntityDB()
    app = make_app()
    with app.app_context(), pytest.raises(RuntimeError, match="forget to call 'init_app'"):
        _ = db.entities


def test_request_roundtrip(notes: tuple[Flask, EntityDB]) -> None:
    app, db = notes
    client = app.test_client()
    note_id = client.post("/notes", data={"title": "hello"}).text
    assert client.get(f"/notes/{note_id}").text == "hello"
    assert client.get("/notes/999999").status_code == 404
    assert count_rows(app, db) == 1


def test_one_session_per_request(notes: tuple[Flask, EntityDB]) -> None:
    app, db = notes
    seen: list[object] = []

    @app.get("/sessions")
    def sessions() -> str:
        seen.append(db.session())
        seen.append(db.session())
        return "ok"

    client = app.test_client()
    client.get("/sessions")
    client.get("/sessions")
    assert seen[0] is seen[1]
    assert seen[2] is seen[3]
    assert seen[0] is not seen[2]


def test_each_app_context_has_its_own_session(notes: tuple[Flask, EntityDB]) -> None:
    app, db = notes
    with app.app_context():
        outer = db.session()
        db.session.add(Note(title="outer, not committed"))
        with app.app_context():
            inner = db.session()
            assert inner is not outer
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Note)) == 0
        assert db.session() is outer
        assert len(db.session.new) == 1
        db.session.commit()
    with app.app_context():
        assert db.session() is not outer
    assert count_rows(app, db) == 1


def test_session_outside_an_app_context_is_a_clear_error(
    notes: tuple[Flask, EntityDB],
) -> None:
    _, db = notes
    with pytest.raises(RuntimeError) as error:
        db.session.add(Note(title="nowhere"))
    assert str(error.value) == (
        "Working outside of application context: 'db.session' belongs to an app context;"
        " push one with 'with app.app_context():' (a request or the 'flask' command push"
        " one for you)."
    )
    assert not db.session.registry.has()
    db.session.remove()  # nothing to remove, and no error


@pytest.mark.parametrize("route", ["/notes/fail", "/notes/raise"])
def test_failed_request_is_rolled_back(
    notes: tuple[Flask, EntityDB], backend: str, route: str
) -> None:
    app, db = notes
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    assert client.post(route, data={"title": "lost"}).status_code == 500
    assert count_rows(app, db) == 0
    with app.app_context():
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert open_transactions(app, db, backend) == 0
    # the unique title is free again: nothing of the failed request was kept
    assert client.post("/notes", data={"title": "lost"}).status_code == 200


def test_request_without_database_checks_out_nothing(notes: tuple[Flask, EntityDB]) -> None:
    app, db = notes
    checkouts: list[object] = []
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "checkout", lambda *args: checkouts.append(args))
    client = app.test_client()
    for _ in range(5):
        assert client.get("/ping").text == "pong"
    assert checkouts == []
    client.get("/notes/1")
    assert len(checkouts) == 1


def test_paginate_and_404_helpers(notes: tuple[Flask, EntityDB]) -> None:
    app, db = notes
    client = app.test_client()
    for title in ["a", "b", "c"]:
        client.post("/notes", data={"title": title})
    assert client.get("/page?page=2").json == {"titles": ["c"], "total": 3}
    with app.test_request_context():
        assert db.first_or_404(sa.select(Note).where(Note.title == "b")).title == "b"
        assert db.one_or_404(sa.select(Note).where(Note.title == "c")).title == "c"
        with pytest.raises(Exception) as info:
            db.one_or_404(sa.select(Note).where(Note.title == "zzz"))
        assert getattr(info.value, "code", None) == 404


def test_shell_context_has_db(notes: tuple[Flask, EntityDB]) -> None:
    app, db = notes
    with app.app_context():
        context = app.make_shell_context()
    assert context["db"] is db


def test_thousand_mixed_requests_leave_nothing_open(
    notes: tuple[Flask, EntityDB], backend: str
) -> None:
    app, db = notes
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    rng = random.Random(1234)
    committed = 0
    statuses: dict[int, int] = {}
    for i in range(1000):
        kind = rng.choice(["read", "write", "fail", "raise", "ping"])
        if kind == "read":
            response = client.get(f"/notes/{rng.randint(1, 50)}")
        elif kind == "write":
            response = client.post("/notes", data={"title": f"n{i}"})
            committed += response.status_code == 200
        elif kind == "ping":
            response = client.get("/ping")
        else:
            response = client.post(f"/notes/{kind}", data={"title": f"f{i}"})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert set(statuses) <= {200, 404, 500}
    assert count_rows(app, db) == committed > 100
    with app.app_context():
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert open_transactions(app, db, backend) == 0
    assert lingering_locks(app, db, backend) == 0


def lingering_locks(app: Flask, db: EntityDB, backend: str) -> int:
    """Locks other connections of the app still hold on the notes table."""
    with app.app_context(), db.engine.connect() as conn:
        if backend == "mysql":
            # DDL needs an exclusive metadata lock: it times out if anyone holds one
            conn.execute(sa.text("SET SESSION lock_wait_timeout = 1"))
            try:
                conn.execute(sa.text("ALTER TABLE notes COMMENT = 'probe'"))
            except sa.exc.OperationalError:
                return 1
            return 0
        if backend == "postgresql":
            sql = (
                "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE a.datname = current_database() AND l.pid <> pg_backend_pid()"
            )
            return int(conn.execute(sa.text(sql)).scalar_one())
        return 0


@pytest.mark.mysql
def test_connection_killed_before_teardown_does_not_fail_the_request(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    url, drop = create_database("mysql", tmp_path)
    try:
        app, db = make_notes_app(make_app, url)
        admin = sa.create_engine(url, poolclass=sa.NullPool)

        @app.get("/killed")
        def killed() -> str:
            db.session.execute(sa.select(Note)).all()  # a transaction is open now
            connection_id = db.session.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one()
            with admin.connect() as conn:
                conn.execute(sa.text(f"KILL {int(connection_id)}"))
            return "answered"

        client = app.test_client()
        assert client.get("/killed").text == "answered"
        with app.app_context():
            assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        # the next request gets a working connection
        assert client.post("/notes", data={"title": "after"}).status_code == 200
        assert count_rows(app, db) == 1
        admin.dispose()
    finally:
        drop()
