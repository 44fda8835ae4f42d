"""The same three-view Flask app, built on each database layer the request benchmarks compare.

Views (identical in every variant):

- ``GET /none``: never touches the database;
- ``GET /read``: one primary-key read (``session.get(Item, 1)``);
- ``POST /insert``: one insert and commit.

Variants:

- ``raw``: SQLAlchemy ``sessionmaker`` + ``scoped_session``, removed at
  ``teardown_appcontext``; the baseline on every backend;
- ``raw+ping``: the same with ``pool_pre_ping=True`` (MariaDB, PostgreSQL): what
  flask-entitydb 0.1 did, one round trip per checkout;
- ``flask-sqlalchemy``, ``fsa-lite`` (flask-sqlalchemy-lite), ``entitydb``: the extensions,
  configured the same way (on MariaDB: ``pool_recycle=3600``, ``charset=utf8mb4``, as
  flask-entitydb's defaults; no ``pool_pre_ping``; on SQLite: nothing). ``entitydb`` runs its
  default ``ENTITYDB_LIVENESS="retry"`` (no ping, the first statement retried on a lost
  connection, connections idle over 60 s pinged);
- ``entitydb-noidle``: the same with ``ENTITYDB_LIVENESS_PING_IDLE=None`` (what the idle
  check costs); ``entitydb-ping``: ``ENTITYDB_LIVENESS="ping"`` (``pool_pre_ping``).
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

VARIANTS = (
    "raw",
    "raw+ping",
    "flask-sqlalchemy",
    "fsa-lite",
    "entitydb",
    "entitydb-noidle",
    "entitydb-ping",
)
VIEWS = ("none", "read", "insert")
SERVER_BACKENDS = ("mysql", "postgresql")
BASELINE = {"sqlite": "raw", "mysql": "raw", "postgresql": "raw"}
"""The baseline each backend's ratios are taken against: raw SQLAlchemy without a ping
(``raw+ping`` is reported next to it)."""

DEFAULT_MYSQL_URL = "mysql+mysqldb://root@127.0.0.1:3306"
DEFAULT_POSTGRESQL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"

_ENTITYDB_CONFIG: dict[str, dict[str, Any]] = {
    "entitydb": {},
    "entitydb-noidle": {"ENTITYDB_LIVENESS_PING_IDLE": None},
    "entitydb-ping": {"ENTITYDB_LIVENESS": "ping"},
}


def engine_options(backend: str, variant: str, pool_size: int | None = None) -> dict[str, Any]:
    """The engine options every variant gets, so all are configured the same way."""
    options: dict[str, Any] = {}
    if backend == "mysql":
        options["pool_recycle"] = 3600
    if backend in SERVER_BACKENDS and variant == "raw+ping":
        options["pool_pre_ping"] = True
    if pool_size is not None:
        options["pool_size"] = pool_size
    return options


def database_url(
    backend: str,
    variant: str,
    *,
    sqlite_dir: str,
    mysql_url: str = DEFAULT_MYSQL_URL,
    postgresql_url: str = DEFAULT_POSTGRESQL_URL,
) -> str:
    """A database of its own for each variant, so no variant writes into another's table."""
    slug = variant.replace("+", "_").replace("-", "_")
    if backend == "sqlite":
        return f"sqlite:///{os.path.join(sqlite_dir, slug + '.sqlite3')}"
    if backend == "postgresql":
        base = sa.make_url(postgresql_url)
        url = base.set(database=f"edb_bench_{slug}")
    else:
        base = sa.make_url(mysql_url)
        url = base.set(database=f"edb_bench_{slug}", query={"charset": "utf8mb4"})
    return url.render_as_string(hide_password=False)


def _admin(parsed: sa.URL) -> sa.Engine:
    database = "postgres" if parsed.get_backend_name() == "postgresql" else ""
    return sa.create_engine(
        parsed.set(database=database), poolclass=sa.NullPool, isolation_level="AUTOCOMMIT"
    )


def prepare_database(url: str) -> None:
    """Create the database (MariaDB, PostgreSQL) and the table, holding exactly the row
    ``id=1``."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend in SERVER_BACKENDS:
        admin = _admin(parsed)
        with admin.connect() as conn:
            if backend == "mysql":
                conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS {parsed.database}"))
            elif not conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": parsed.database}
            ).first():
                conn.execute(sa.text(f"CREATE DATABASE {parsed.database}"))
        admin.dispose()
    engine = sa.create_engine(parsed, poolclass=sa.NullPool)
    table: sa.Table = Item.__table__  # type: ignore[assignment]
    table.drop(engine, checkfirst=True)
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert().values(id=1, name="first"))
        if backend == "postgresql":  # the inserts after it must not collide with id=1
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('bench_item', 'id'), 1)"))
    engine.dispose()


def drop_database(url: str) -> None:
    """Drop the database of a server variant (SQLite files go with their directory)."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend not in SERVER_BACKENDS:
        return
    admin = _admin(parsed)
    force = " WITH (FORCE)" if backend == "postgresql" else ""
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {parsed.database}{force}"))
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

    # flask-entitydb applies the MariaDB options itself (pool_recycle, utf8mb4); they are
    # passed anyway so the configuration is visibly the same.
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
    "entitydb-noidle": _entitydb,
    "entitydb-ping": _entitydb,
}


def make_app(variant: str, backend: str, url: str, *, pool_size: int | None = None) -> BenchApp:
    """Build the benchmark app of ``variant`` on the database at ``url``."""
    app = Flask("benchapp")
    app.config.update(_ENTITYDB_CONFIG.get(variant, {}))
    engine = _BUILDERS[variant](app, url, engine_options(backend, variant, pool_size))
    return BenchApp(variant, app, engine)
