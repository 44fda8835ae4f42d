"""A primary and its replica (``helpers.servers``) made ready for the replica tests: a
fresh database with a ``notes`` table, what the server says about which one answered,
and ways to make the replica fall behind (pause, delay, disconnect).

Each way of falling behind is undone by :meth:`Cluster.heal`, which the ``cluster``
fixture calls after each test.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask, jsonify, request
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_entitydb import EntityDB
from helpers.servers import MariaDBServer, PostgreSQLServer


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.String(80))


@dataclass
class Cluster:
    """One primary and its replica, with the backend's SQL for the tests."""

    backend: str
    primary: MariaDBServer | PostgreSQLServer
    replica: MariaDBServer | PostgreSQLServer
    database: str
    _conninfo: str | None = field(default=None, repr=False)

    @property
    def port_sql(self) -> str:
        return "SELECT @@port" if self.backend == "mysql" else "SELECT inet_server_port()"

    def primary_url(self) -> str:
        return self.primary.url(self.database)

    def replica_url(self) -> str:
        return self.replica.app_url(self.database)

    def pause(self) -> None:
        """Stop applying (the replica still receives)."""
        if self.backend == "mysql":
            self.replica.execute("STOP SLAVE SQL_THREAD")
        else:
            self.replica.execute("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        if self.backend == "mysql":
            self.replica.execute("START SLAVE SQL_THREAD")
        else:
            self.replica.execute("SELECT pg_wal_replay_resume()")

    def delay(self, seconds: int) -> None:
        """Apply each transaction ``seconds`` after the primary committed it
        (``MASTER_DELAY`` / ``recovery_min_apply_delay``); 0 undoes it."""
        if self.backend == "mysql":
            self.replica.execute("STOP SLAVE")
            self.replica.execute(f"CHANGE MASTER TO MASTER_DELAY = {seconds}")
            self.replica.execute("START SLAVE")
            self.wait_for_io_thread()
        else:
            self.replica.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{seconds}s'")
            self.replica.execute("SELECT pg_reload_conf()")

    def wait_for_io_thread(self, timeout: float = 30.0) -> None:
        """Wait until the MariaDB replica's I/O thread is connected again after a restart
        of replication (it is "Connecting" for a moment)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.replica.execute("SHOW SLAVE STATUS")
            if rows and rows[0]._mapping["Slave_IO_Running"] == "Yes":
                return
            assert time.monotonic() < deadline, "the replica's I/O thread did not reconnect"
            time.sleep(0.05)

    def disconnect(self) -> None:
        """Cut the replica off its primary: it stops receiving (and so applying)."""
        if self.backend == "mysql":
            self.replica.execute("STOP SLAVE IO_THREAD")
            return
        if self._conninfo is None:
            self._conninfo = str(self.replica.execute("SHOW primary_conninfo")[0][0])
        self.replica.execute("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1'")
        self.replica.execute("SELECT pg_reload_conf()")

    def reconnect(self) -> None:
        if self.backend == "mysql":
            self.replica.execute("START SLAVE IO_THREAD")
            return
        if self._conninfo is not None:
            quoted = self._conninfo.replace("'", "''")
            self.replica.execute(f"ALTER SYSTEM SET primary_conninfo = '{quoted}'")
            self.replica.execute("SELECT pg_reload_conf()")
            self._conninfo = None

    def heal(self) -> None:
        """Undo every way of falling behind; the replica is running and replicating."""
        if not self.replica.running:
            self.replica.start()
        self.reconnect()
        if self.backend == "mysql":
            self.replica.execute("STOP SLAVE")
            self.replica.execute("CHANGE MASTER TO MASTER_DELAY = 0")
            self.replica.execute("START SLAVE")
            self.wait_for_io_thread()
        else:
            self.replica.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
            self.replica.execute("SELECT pg_reload_conf()")
            self.resume()

    def insert(self, text: str) -> None:
        """Write a note on the primary, outside any app."""
        engine = sa.create_engine(self.primary_url(), poolclass=sa.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.insert(Note.__table__).values(text=text))
        engine.dispose()

    def replica_has(self, text: str) -> bool:
        engine = sa.create_engine(self.replica.url(self.database), poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                found = conn.execute(sa.text("SELECT 1 FROM notes WHERE text = :t"), {"t": text})
                return found.first() is not None
        except sa.exc.DBAPIError:
            return False
        finally:
            engine.dispose()

    def primary_has(self, text: str) -> bool:
        engine = sa.create_engine(self.primary_url(), poolclass=sa.NullPool)
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT 1 FROM notes WHERE text = :t"), {"t": text})
            row = found.first()
        engine.dispose()
        return row is not None

    def back_on_replica(self, client: Any, text: str, timeout: float = 10.0) -> dict[str, Any]:
        """``GET /notes`` by ``client`` until the replica answers (once it has applied
        the client's write: MariaDB shows the row a moment before ``@@gtid_slave_pos``
        counts it); that answer, which must hold ``text``."""
        deadline = time.monotonic() + timeout
        while True:
            seen: dict[str, Any] = client.get("/notes").get_json()
            if seen["port"] == self.replica.port:
                assert text in seen["texts"]
                return seen
            assert time.monotonic() < deadline, "the client never read from the replica again"
            time.sleep(0.05)

    def wait_for_replica(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.replica_has(text):
            assert time.monotonic() < deadline, f"the replica never replayed {text!r}"
            time.sleep(0.05)

    def replicating(self) -> bool:
        """Whether the replica applies what the primary writes (a new row arrives)."""
        marker = f"alive-{time.monotonic_ns()}"
        self.insert(marker)
        try:
            self.wait_for_replica(marker, timeout=30)
        except AssertionError:
            return False
        return True


def make_cluster(backend: str, primary: Any, replica: Any) -> Cluster:
    """A fresh database with the ``notes`` table on ``primary``, replayed by ``replica``."""
    database = primary.create_database()
    engine = sa.create_engine(primary.url(database), poolclass=sa.NullPool)
    Base.metadata.create_all(engine)
    engine.dispose()
    cluster = Cluster(backend, primary, replica, database)
    if backend == "postgresql":
        with contextlib.suppress(sa.exc.DBAPIError):
            primary.execute("SELECT pg_switch_wal()")
    marker = f"ready-{database}"
    cluster.insert(marker)
    cluster.wait_for_replica(marker, timeout=60)
    return cluster


AppFactory = Callable[..., Flask]


Views = Callable[[Flask, EntityDB], None]


def replica_app(cluster: Cluster, views: Views | None = None, **config: Any) -> Flask:
    """An app on ``cluster``'s primary with its replica: ``GET /notes`` (the port that
    answered and the notes), ``POST /notes``, ``GET /latest`` (``db.primary()``), and
    what ``views(app, db)`` adds."""
    app = Flask("replica_app")
    app.config.update(
        TESTING=True,
        SECRET_KEY="test",
        DB_CONNECTION_STRING=cluster.primary_url(),
        ENTITYDB_REPLICAS=[cluster.replica_url()],
    )
    app.config.update(config)
    db = EntityDB(app, base=Base)

    @app.get("/notes")
    def notes() -> Any:
        port = db.session.execute(sa.text(cluster.port_sql)).scalar()
        texts = db.session.scalars(sa.select(Note.text).order_by(Note.id)).all()
        return jsonify(port=port, texts=texts)

    @app.post("/notes")
    def add_note() -> Any:
        db.session.add(Note(text=request.form["text"]))
        db.session.commit()
        return jsonify(port=db.session.execute(sa.text(cluster.port_sql)).scalar())

    @app.get("/latest")
    @db.primary()
    def latest() -> Any:
        return jsonify(port=db.session.execute(sa.text(cluster.port_sql)).scalar())

    if views is not None:
        views(app, db)
    return app


def dispose_app(app: Flask) -> None:
    with app.app_context():
        for engine in app.extensions["sqlalchemy"].engines.values():
            engine.dispose()
