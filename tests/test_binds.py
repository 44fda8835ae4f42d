"""Several databases in one app (binds): configuration, routing and ``flask db``.

``ENTITYDB_BINDS`` / ``DB_CONNECTION_STRING_<KEY>`` / ``SQLALCHEMY_BINDS`` URLs go through
the same preparation as ``DB_CONNECTION_STRING`` (``ssl=``, engine defaults, checks); an
entity's ``__bind_key__`` sends its rows to its bind's database; ``flask db`` migrates each
bind from its own folder into its own database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.databases import create_database
from helpers.migration_apps import USER_ENTITY, AppPackage, make_package, ok
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_entitydb import ConfigurationError, EntityDB

EVENT_ENTITY = """\
class Event(Base):
    __tablename__ = "events"
    __bind_key__ = "analytics"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
"""

EVENT_ENTITY_WITH_SOURCE = (
    EVENT_ENTITY
    + """\
    source: Mapped[str | None] = mapped_column(sa.String(40))
"""
)


def _base_with_event() -> tuple[type[DeclarativeBase], type[DeclarativeBase]]:
    class Base(DeclarativeBase):
        pass

    class Event(Base):
        __tablename__ = "events"
        __bind_key__ = "analytics"
        id: Mapped[int] = mapped_column(primary_key=True)

    return Base, Event


# -- configuration ---------------------------------------------------------------------------


def test_bind_url_is_prepared_like_the_default_one(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        ENTITYDB_BINDS={
            "analytics": "postgresql+psycopg://app:secret@db.example/analytics?ssl=true",
            "legacy": "mysql+mysqldb://app:secret@db.example/legacy",
        }
    )
    db = EntityDB(app)
    with app.app_context():
        analytics = db.engines["analytics"]
        legacy = db.engines["legacy"]
    assert analytics.url.query["sslmode"] == "verify-full"
    assert "ssl" not in analytics.url.query
    assert not analytics.pool._pre_ping  # type: ignore[attr-defined]
    settings = db.state(app).settings  # the same liveness policy: retry, no ping
    assert settings.liveness_of(settings.bind("analytics").primary) == "retry"
    assert legacy.url.query["charset"] == "utf8mb4"
    assert legacy.pool._recycle == 3600  # type: ignore[attr-defined]


def test_bind_error_names_the_bind_and_hides_the_password(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(ENTITYDB_BINDS={"analytics": "mysql+mysqldb://app:secret@db/x?ssl=maybe"})
    with pytest.raises(ConfigurationError) as caught:
        EntityDB(app)
    message = str(caught.value)
    assert "'ENTITYDB_BINDS['analytics']'" in message
    assert "ssl=maybe" in message
    assert "secret" not in message


def test_sqlalchemy_binds_are_honoured_not_ignored(make_app: Callable[..., Flask]) -> None:
    """Flask-SQLAlchemy's key works as before, but its URLs get ``ssl=true`` too."""
    app = make_app(
        SQLALCHEMY_BINDS={
            "analytics": {"url": "postgresql+psycopg://app@db/analytics?ssl=true", "echo": True}
        }
    )
    db = EntityDB(app)
    with app.app_context():
        engine = db.engines["analytics"]
    assert engine.url.query["sslmode"] == "verify-full"
    assert engine.echo is True


def test_bind_key_without_a_url_is_refused(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DB_CONNECTION_STRING_ANALYTICS", raising=False)
    base, _ = _base_with_event()
    with pytest.raises(ConfigurationError) as caught:
        EntityDB(make_app(), base=base)
    message = str(caught.value)
    assert "'Event' has __bind_key__ = 'analytics'" in message
    assert "DB_CONNECTION_STRING_ANALYTICS" in message


def test_bind_url_from_the_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DB_CONNECTION_STRING_ANALYTICS", f"sqlite:///{tmp_path / 'a.db'}")
    base, _ = _base_with_event()
    app = make_app()
    db = EntityDB(app, base=base)
    with app.app_context():
        assert db.engines["analytics"].url.database == str(tmp_path / "a.db")
        assert db.state().settings.bind("analytics").primary.url_source == (
            "DB_CONNECTION_STRING_ANALYTICS in the environment"
        )


def test_bad_bind_key_is_refused(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigurationError, match="bind key 'my-db'"):
        EntityDB(make_app(ENTITYDB_BINDS={"my-db": "sqlite://"}))


def test_rows_go_to_their_binds_database(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)

    class Event(Base):
        __tablename__ = "events"
        __bind_key__ = "analytics"
        id: Mapped[int] = mapped_column(primary_key=True)

    main, other = tmp_path / "main.db", tmp_path / "analytics.db"
    app = make_app(
        DB_CONNECTION_STRING=f"sqlite:///{main}",
        ENTITYDB_BINDS={"analytics": f"sqlite:///{other}"},
    )
    db = EntityDB(app, base=Base)
    with app.app_context():
        db.create_all()
        db.session.add_all([User(id=1), Event(id=2)])
        db.session.commit()
        assert db.session.scalars(sa.select(Event.id)).all() == [2]
        assert db.session.execute(sa.select(Event.__table__.c.id)).scalar() == 2
        db.session.execute(sa.update(Event).values(id=3))
        db.session.commit()
    for path, table, expected in ((main, "users", 1), (other, "events", 3)):
        engine = sa.create_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) == {table}
            assert conn.scalar(sa.text(f"SELECT id FROM {table}")) == expected
        engine.dispose()


# -- flask db with two binds: MariaDB + PostgreSQL ------------------------------------------


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fresh MariaDB database (default bind) and a fresh PostgreSQL one (analytics)."""
    mysql_url, drop_mysql = create_database("mysql", tmp_path)
    postgresql_url, drop_postgresql = create_database("postgresql", tmp_path)
    yield mysql_url, postgresql_url
    drop_mysql()
    drop_postgresql()


@pytest.fixture
def package_url(two_servers: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DB_CONNECTION_STRING_ANALYTICS", two_servers[1])
    return two_servers[0]


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.mysql
@pytest.mark.postgresql
def test_two_binds_mysql_postgresql_migrated_queried_checked(
    package: AppPackage, two_servers: tuple[str, str]
) -> None:
    mysql_url, postgresql_url = two_servers
    package.write_entity("user", USER_ENTITY)
    package.write_entity("event", EVENT_ENTITY)

    out = ok(package.cli("init"))
    bind_folder = package.migrations / "binds" / "analytics"
    assert (bind_folder / "env.py").is_file()
    assert "entitydb_bind = analytics" in (bind_folder / "alembic.ini").read_text()
    assert "[analytics]" in out

    out = ok(package.cli("migrate", "-v", "-m", "first"))
    assert out.index("[default]") < out.index("add table 'users'") < out.index("[analytics]")
    assert out.index("[analytics]") < out.index("add table 'events'")
    assert "events" not in out[: out.index("[analytics]")]
    assert len(package.revision_files()) == 1
    assert len(list((bind_folder / "versions").glob("*.py"))) == 1

    ok(package.cli("upgrade"))
    assert _tables(mysql_url) == {"alembic_version", "flask_entitydb_journal", "users"}
    assert _tables(postgresql_url) == {"alembic_version", "flask_entitydb_journal", "events"}

    app = package.create_app()
    module = __import__(f"{package.name}.entities.event_entity", fromlist=["Event"])
    users = __import__(f"{package.name}.entities.user_entity", fromlist=["User"])
    db = app.extensions["entitydb"].db
    with app.app_context():
        db.session.add_all([users.User(name="ada"), module.Event(kind="signup")])
        db.session.commit()
        assert db.session.scalars(sa.select(module.Event.kind)).all() == ["signup"]
        assert db.session.scalars(sa.select(users.User.name)).all() == ["ada"]
        port = db.session.execute(
            sa.select(sa.func.inet_server_port()).select_from(module.Event.__table__)
        ).scalar()
        assert port == sa.make_url(postgresql_url).port
    assert "matches the entities" in ok(package.cli("check"))

    current = ok(package.cli("current", "--bind", "analytics"))
    assert "[default]" not in current
    analytics_revision = next((bind_folder / "versions").glob("*.py")).name.split("_")[0]
    assert analytics_revision in current

    package.write_entity("event", EVENT_ENTITY_WITH_SOURCE)
    result = package.cli("check")
    assert result.exit_code == 1
    assert "add column 'events.source'" in result.output
    assert result.output.index("[analytics]") < result.output.index("events.source")

    out = ok(package.cli("migrate", "-v", "--bind", "analytics", "-m", "source"))
    assert "[default]" not in out and "add column 'events.source'" in out
    ok(package.cli("upgrade", "--bind", "analytics"))
    assert "matches the entities" in ok(package.cli("check"))
    history = ok(package.cli("history", "--bind", "analytics"))
    assert "source" in history and "first" in history

    ok(package.cli("downgrade", "--bind", "analytics", "base"))
    assert _tables(postgresql_url) == {"alembic_version", "flask_entitydb_journal"}
    assert _tables(mysql_url) == {"alembic_version", "flask_entitydb_journal", "users"}

    result = package.cli("upgrade", "--bind", "nope")
    assert result.exit_code == 1
    assert "There is no bind 'nope'; the app's binds are 'default', 'analytics'" in result.output


@pytest.fixture
def sqlite_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppPackage]:
    """Users (default bind) and events (analytics), both on SQLite, with a first revision
    per bind made, none applied."""
    monkeypatch.setenv("DB_CONNECTION_STRING_ANALYTICS", f"sqlite:///{tmp_path / 'a.sqlite3'}")
    for package in make_package(tmp_path, f"sqlite:///{tmp_path / 'main.sqlite3'}", monkeypatch):
        package.write_entity("user", USER_ENTITY)
        package.write_entity("event", EVENT_ENTITY)
        ok(package.cli("init"))
        ok(package.cli("migrate", "-m", "first"))
        yield package


def test_pending_migrations_guard_checks_every_bind(
    sqlite_package: AppPackage, caplog: pytest.LogCaptureFixture
) -> None:
    package = sqlite_package
    ok(package.cli("upgrade", "--bind", "default"))

    app = package.create_app(ENTITYDB_PENDING_MIGRATIONS="error")
    app.add_url_rule("/", "index", lambda: "ok")
    with caplog.at_level("ERROR", logger="flask_entitydb"):
        assert app.test_client().get("/").status_code == 503
    assert "The database of the bind 'analytics' is at no revision" in caplog.text
    assert "'flask db upgrade --bind analytics'" in caplog.text

    ok(package.cli("upgrade", "--bind", "analytics"))
    app = package.create_app(ENTITYDB_PENDING_MIGRATIONS="error")
    app.add_url_rule("/", "index", lambda: "ok")
    assert app.test_client().get("/").status_code == 200


@pytest.mark.mysql
@pytest.mark.postgresql
def test_json_of_several_binds_is_one_document(package: AppPackage) -> None:
    """'lint --json' over two binds prints one JSON document (not one per bind, with
    header lines between them); with '--bind' it is the one-bind document, as before."""
    package.write_entity("user", USER_ENTITY)
    package.write_entity("event", EVENT_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "first"))
    ok(package.cli("upgrade"))
    package.write_entity(
        "event", EVENT_ENTITY.replace("    kind: Mapped[str] = mapped_column(sa.String(40))\n", "")
    )
    ok(package.cli("migrate", "--bind", "analytics", "-m", "no kind"))

    result = package.cli("lint", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert list(report["binds"]) == ["default", "analytics"]
    assert report["binds"]["default"]["dialect"] == "mysql"
    assert report["binds"]["default"]["ok"] is True
    assert report["binds"]["default"]["revisions"] == []  # everything applied
    analytics = report["binds"]["analytics"]
    assert (analytics["dialect"], analytics["ok"], len(analytics["revisions"])) == (
        "postgresql",
        False,
        1,
    )
    assert [(f["bind"], f["rule"]) for f in report["findings"]] == [("analytics", "drop-column")]
    assert report["findings"] == analytics["findings"]

    result = package.cli("lint", "--json", "--all")
    report = json.loads(result.stdout)
    assert {name: len(doc["revisions"]) for name, doc in report["binds"].items()} == {
        "default": 1,
        "analytics": 2,
    }

    result = package.cli("lint", "--json", "--bind", "default")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["bind"], report["dialect"], report["ok"]) == ("default", "mysql", True)
    assert "binds" not in report

    entities = json.loads(ok(package.cli("entities", "--json")))["entities"]
    assert {(e["table"], e["bind"]) for e in entities} == {
        ("users", "default"),
        ("events", "analytics"),
    }


def test_merge_edit_branches_per_bind(
    sqlite_package: AppPackage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = sqlite_package
    bind_versions = package.migrations / "binds" / "analytics" / "versions"
    (first,) = [p.name.split("_")[0] for p in bind_versions.glob("*.py")]
    for rev in ("x1", "x2"):  # two branches in the analytics bind
        ok(
            package.cli(
                "revision",
                "--bind",
                "analytics",
                "--head",
                first,
                "--rev-id",
                rev,
                "--splice",
                "-m",
                rev,
            )
        )

    out = ok(package.cli("branches"))
    assert out.index("[default]") < out.index("[analytics]") < out.index(first)
    assert "-> x1" in out and "-> x2" in out

    out = ok(package.cli("merge", "-m", "join"))
    assert "Nothing to merge in 'default': it has one head." in out
    assert len(list(bind_versions.glob("*.py"))) == 4
    assert len(package.revision_files()) == 1
    assert len(ok(package.cli("heads", "--bind", "analytics")).splitlines()) == 1
    result = package.cli("merge", "x1", "x2")
    assert result.exit_code == 1
    assert "Revisions to merge belong to one bind; name it with 'flask db merge --bind KEY" in (
        result.output
    )

    log = tmp_path / "edited.txt"
    monkeypatch.setenv("EDITOR", f"{tmp_path / 'editor.sh'}")
    (tmp_path / "editor.sh").write_text(f'#!/bin/sh\necho "$1" >> {log}\n')
    (tmp_path / "editor.sh").chmod(0o755)
    ok(package.cli("edit", "x1"))  # only the analytics bind has it
    assert log.read_text().strip().endswith("x1_x1.py")
    result = package.cli("edit")  # 'head' is in both binds
    assert result.exit_code == 1
    assert "The revision 'head' is in the binds 'default', 'analytics'; choose one with" in (
        result.output
    )
    ok(package.cli("edit", "--bind", "default"))
    assert log.read_text().splitlines()[-1] == str(package.revision_files()[0])
    result = package.cli("edit", "nope")
    assert result.exit_code == 1
    assert "No bind ('default', 'analytics') has the revision 'nope'" in result.output
