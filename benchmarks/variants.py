"""The same three-view Flask app, built on each database layer the request benchmarks compare.

Views (identical in every variant):

- ``GET /none``: never touches the database;
- ``GET /read``: one primary-key read (``session.get(Item, 1)``);
- ``POST /insert``: one insert and commit.

Variants:

- ``raw``: SQLAlchemy ``sessionmaker`` + ``scoped_session``, removed at
  ``teardown_appcontext``; the baseline on SQLite;
- ``raw+ping``: the same with ``pool_pre_ping=True``; the baseline on MariaDB, where
  flask-entitydb pings by default;
- ``flask-sqlalchemy``, ``fsa-lite`` (flask-sqlalchemy-lite), ``entitydb``: the extensions,
  configured the same way (on MariaDB: ``pool_pre_ping=True``, ``pool_recycle=3600``,
  ``charset=utf8mb4``, as flask-entitydb's defaults; on SQLite: nothing).

Every variant maps the same ``Item`` class (``benchapp/entities/item_entity.py``, found by
flask-entitydb's discovery), so only the layer between Flask and SQLAlchemy differs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from benchapp.entities.item_entity import Item
from flask import Flask
from sqlalchemy import orm

VARIANTS = ("raw", "raw+ping", "flask-sqlalchemy", "fsa-lite", "entitydb")
VIEWS = ("none", "read", "insert")
BASELINE = {"sqlite": "raw", "mysql": "raw+ping"}
"""The baseline each backend's ratios are taken against (the same liveness guarantee)."""

DEFAULT_MYSQL_URL = "mysql+mysqldb://root@127.0.0.1:3306"


def engine_options(backend: str, variant: str, pool_size: int | None = None) -> dict[str, Any]:
    """The engine options every variant gets, so all are configured the same way."""
    options: dict[str, Any] = {}
    if backend == "mysql":
        options["pool_recycle"] = 3600
        if variant != "raw":
            options["pool_pre_ping"] = True
    if pool_size is not None:
        options["pool_size"] = pool_size
    return options


def database_url(backend: str, variant: str, *, sqlite_dir: str, mysql_url: str) -> str:
    """A database of its own for each variant, so no variant writes into another's table."""
    slug = variant.replace("+", "_").replace("-", "_")
    if backend == "sqlite":
        return f"sqlite:///{os.path.join(sqlite_dir, slug + '.sqlite3')}"
    base = sa.make_url(mysql_url)
    return base.set(database=f"edb_bench_{slug}", query={"charset": "utf8mb4"}).render_as_string(
        hide_password=False
    )


def prepare_database(url: str) -> None:
    """Create the database (MariaDB) and the table, holding exactly the row ``id=1``."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "mysql":
        admin = sa.create_engine(parsed.set(database=""), poolclass=sa.NullPool)
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS {parsed.database}"))
        admin.dispose()
    engine = sa.create_engine(parsed, poolclass=sa.NullPool)
    table: sa.Table = Item.__table__  # type: ignore[assignment]
    table.drop(engine, checkfirst=True)
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert().values(id=1, name="first"))
    engine.dispose()


def drop_database(url: str) -> None:
    """Drop the database of a MariaDB variant (SQLite files go with their directory)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "mysql":
        return
    admin = sa.create_engine(parsed.set(database=""), poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {parsed.database}"))
    admin.dispose()


@dataclass
class BenchApp:
    """A built variant: the app and the engine whose pool the benchmark watches."""

    variant: str
    app: Flask
    engine: sa.Engine


def _add_views(app: Flask, session: Callable[[], Any]) -> None:
    @app.get("/none")
    def none() -> str:
        return "ok"

    @app.get("/read")
    def read() -> str:
        return session().get(Item, 1).name  # type: ignore[no-any-return]

    @app.post("/insert")
    def insert() -> str:
        s = session()
        s.add(Item(name="x"))
        s.commit()
        return "ok"


def _raw(app: Flask, url: str, options: dict[str, Any]) -> sa.Engine:
    engine = sa.create_engine(url, **options)
    scoped = orm.scoped_session(orm.sessionmaker(engine))

    @app.teardown_appcontext
    def remove_session(exc: BaseException | None) -> None:
        scoped.remove()

    _add_views(app, lambda: scoped)
    return engine


def _flask_sqlalchemy(app: Flask, url: str, options: dict[str, Any]) -> sa.Engine:
    from flask_sqlalchemy import SQLAlchemy

    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db = SQLAlchemy(app, add_models_to_shell=False)
    scoped = db.session
    _add_views(app, lambda: scoped)
    with app.app_context():
        return db.engine


def _lite(app: Flask, url: str, options: dict[str, Any]) -> sa.Engine:
    from flask_sqlalchemy_lite import SQLAlchemy

    app.config["SQLALCHEMY_ENGINES"] = {"default": {"url": url, **options}}
    db = SQLAlchemy(app)
    _add_views(app, lambda: db.session)
    with app.app_context():
        return db.engine


def _entitydb(app: Flask, url: str, options: dict[str, Any]) -> sa.Engine:
    from flask_entitydb import EntityDB

    # flask-entitydb applies the MariaDB options itself (pool_pre_ping, pool_recycle,
    # utf8mb4); they are passed anyway so the configuration is visibly the same.
    app.config["DB_CONNECTION_STRING"] = url
    app.config["ENTITYDB_ENGINE_OPTIONS"] = options
    db = EntityDB(app)
    scoped = db.session
    _add_views(app, lambda: scoped)
    with app.app_context():
        return db.engine


_BUILDERS: dict[str, Callable[[Flask, str, dict[str, Any]], sa.Engine]] = {
    "raw": _raw,
    "raw+ping": _raw,
    "flask-sqlalchemy": _flask_sqlalchemy,
    "fsa-lite": _lite,
    "entitydb": _entitydb,
}


def make_app(variant: str, backend: str, url: str, *, pool_size: int | None = None) -> BenchApp:
    """Build the benchmark app of ``variant`` on the database at ``url``."""
    app = Flask("benchapp")
    engine = _BUILDERS[variant](app, url, engine_options(backend, variant, pool_size))
    return BenchApp(variant, app, engine)
