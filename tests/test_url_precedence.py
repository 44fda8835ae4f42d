"""A URL the app's config names always wins over an exported ``DB_CONNECTION_STRING``
(issue 15 item 1): a test config must never reach the database of the shell."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.databases import create_database
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_entitydb import ConfigurationError, EntityDB


class _Base(DeclarativeBase):
    pass


class Account(_Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ],
)
@pytest.mark.parametrize("key", ["SQLALCHEMY_DATABASE_URI", "DB_CONNECTION_STRING"])
def test_test_config_never_reaches_the_database_of_the_environment(
    server: str,
    key: str,
    tmp_path: Path,
    make_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The shell exports the production URL; the test config says ``sqlite://``; the
    test suite's ``drop_all()`` must leave the server database alone."""
    url, drop = create_database(server, tmp_path)
    production = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with production.begin() as connection:
            connection.execute(sa.text("CREATE TABLE accounts (id INTEGER PRIMARY KEY)"))
            connection.execute(sa.text("INSERT INTO accounts (id) VALUES (1), (2)"))
        monkeypatch.setenv("DB_CONNECTION_STRING", url)

        app = make_app(**{key: "sqlite://"})
        with caplog.at_level(logging.INFO, logger="flask_entitydb"):
            db = EntityDB(app, base=_Base)
        with app.app_context():
            assert db.engine.url.get_backend_name() == "sqlite"
            db.create_all()
            db.session.add(Account(id=7))
            db.session.commit()
            db.drop_all()
        assert "environment variable" in caplog.text and "ignored" in caplog.text
        assert "secret" not in caplog.text

        with production.connect() as connection:
            assert sa.inspect(connection).has_table("accounts")
            rows = connection.execute(sa.text("SELECT id FROM accounts ORDER BY id"))
            assert [row[0] for row in rows] == [1, 2]
    finally:
        production.dispose()
        drop()


def test_both_config_keys_naming_different_databases_is_an_error(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(
        DB_CONNECTION_STRING="mysql+mysqldb://app:secret@db.example/shop",
        SQLALCHEMY_DATABASE_URI="sqlite://",
    )
    with pytest.raises(ConfigurationError) as caught:
        EntityDB(app)
    message = str(caught.value)
    assert "'DB_CONNECTION_STRING' ('mysql+mysqldb://app:***@db.example/shop')" in message
    assert "'SQLALCHEMY_DATABASE_URI' ('sqlite://')" in message
    assert "keep one of them" in message and "secret" not in message


def test_both_config_keys_naming_the_same_database_is_fine(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/same.db"
    app = make_app(DB_CONNECTION_STRING=url, SQLALCHEMY_DATABASE_URI=sa.make_url(url))
    db = EntityDB(app)
    assert db.state(app).settings.url_source == "DB_CONNECTION_STRING in the app config"


def test_legacy_key_wins_over_the_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DB_CONNECTION_STRING", f"sqlite:///{tmp_path}/env.db")
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/legacy.db")
    db = EntityDB(app)
    assert db.state(app).settings.url.database == f"{tmp_path}/legacy.db"
    assert db.state(app).settings.url_source == "SQLALCHEMY_DATABASE_URI"
