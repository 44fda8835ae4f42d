"""30 % of requests raise after writing, on SQLite, MariaDB and PostgreSQL: the pool is never
exhausted, no transaction stays open on the server and no request's writes are partial."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.entities import new_base
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from flask_entitydb import EntityDB

pytestmark = pytest.mark.filterwarnings("ignore:No entity classes found")

THREADS = 4
REQUESTS_PER_THREAD = 60
POOL = {"pool_size": 2, "max_overflow": 0, "pool_timeout": 5}
"""A pool much smaller than the number of threads: one leaked connection per failing
request would exhaust it within a few requests (``pool_timeout`` -> TimeoutError)."""


Base = new_base()


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)


class OrderLine(Base):
    __tablename__ = "order_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    token: Mapped[str] = mapped_column(String(40))


def orders_app(make_app: Callable[..., Flask], url: str) -> tuple[Flask, EntityDB]:
    app = make_app(
        DB_CONNECTION_STRING=url,
        PROPAGATE_EXCEPTIONS=False,
        ENTITYDB_ENGINE_OPTIONS=POOL,
    )
    db = EntityDB(app, base=Base)
    with app.app_context():
        db.create_all()

    @app.post("/orders/<token>/<int:fail>")
    def place(token: str, fail: int) -> tuple[str, int]:
        order = Order(token=token)
        db.session.add(order)
        db.session.flush()  # the order row is in the database, inside the transaction
        db.session.add_all([OrderLine(order_id=order.id, token=token) for _ in range(2)])
        db.session.flush()
        if fail:
            raise RuntimeError(f"view failed after writing order {token!r}")
        db.session.commit()
        return str(order.id), 201

    return app, db


def open_transactions(backend: str, url: str) -> list[Any]:
    """Transactions the app left open on the server (empty when all is well)."""
    target = sa.make_url(url)
    if backend == "sqlite":
        # a second connection can take the write lock at once only if no one holds it
        raw = sqlite3.connect(target.database or "", timeout=0)
        try:
            raw.execute("BEGIN IMMEDIATE")
            raw.rollback()
            return []
        except sqlite3.OperationalError as exc:
            return [str(exc)]
        finally:
            raw.close()
    admin = sa.create_engine(target, poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            if backend == "mysql":
                sql = (
                    "SELECT t.trx_id FROM information_schema.innodb_trx t"
                    " JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id"
                    " WHERE p.db = :name AND p.id <> CONNECTION_ID()"
                )
            else:
                sql = (
                    "SELECT pid, state FROM pg_stat_activity WHERE datname = :name"
                    " AND pid <> pg_backend_pid() AND (xact_start IS NOT NULL"
                    " OR state LIKE 'idle in transaction%')"
                )
            return list(conn.execute(sa.text(sql), {"name": target.database}))
    finally:
        admin.dispose()


def test_requests_raising_after_writing(
    make_app: Callable[..., Flask], database_url: str, backend: str
) -> None:
    app, db = orders_app(make_app, database_url)
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        client = app.test_client()
        try:
            for n in range(REQUESTS_PER_THREAD):
                token = f"o{w}-{n}"
                fail = int(n % 10 < 3)  # 30 % of the requests raise after writing
                status = client.post(f"/orders/{token}/{fail}").status_code
                with lock:
                    statuses[token] = status
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors

    failed = {t for t, s in statuses.items() if s == 500}
    placed = {t for t, s in statuses.items() if s == 201}
    assert len(statuses) == THREADS * REQUESTS_PER_THREAD
    assert len(failed) == THREADS * REQUESTS_PER_THREAD * 3 // 10  # pool never exhausted
    assert placed | failed == set(statuses)

    with app.app_context():
        assert db.engine.pool.checkedout() == 0
        orders = set(db.session.scalars(sa.select(Order.token)))
        lines = db.session.execute(
            sa.select(OrderLine.token, sa.func.count()).group_by(OrderLine.token)
        ).all()
        db.session.remove()
    assert orders == placed  # no order of a failed request survived
    assert dict(lines) == dict.fromkeys(placed, 2)  # every order complete, none partial
    assert open_transactions(backend, database_url) == []
