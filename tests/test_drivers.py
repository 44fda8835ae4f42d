"""Every MySQL/MariaDB and PostgreSQL driver SQLAlchemy ships that installs from PyPI, against
the real servers: flask-entitydb's defaults suit each one (no ``charset`` for mariadb), a
session round-trips text that needs utf8mb4, and ``flask db`` works."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.databases import create_database

from flask_entitydb import EntityDB

pytestmark = pytest.mark.filterwarnings("ignore:No entity classes found")

DRIVERS = [
    pytest.param(("mysql", "mysql+mysqldb"), id="mysql-mysqldb", marks=pytest.mark.mysql),
    pytest.param(("mysql", "mysql+pymysql"), id="mysql-pymysql", marks=pytest.mark.mysql),
    pytest.param(
        ("mysql", "mysql+mysqlconnector"), id="mysql-mysqlconnector", marks=pytest.mark.mysql
    ),
    pytest.param(
        ("mysql", "mariadb+mariadbconnector"), id="mysql-mariadbconnector", marks=pytest.mark.mysql
    ),
    # the same driver under the mysql dialect name (Flask-SQLAlchemy adds 'charset' to every
    # 'mysql...' URL, which the mariadb driver refuses)
    pytest.param(
        ("mysql", "mysql+mariadbconnector"),
        id="mysql-mysql+mariadbconnector",
        marks=pytest.mark.mysql,
    ),
    pytest.param(
        ("postgresql", "postgresql+psycopg"), id="postgresql-psycopg", marks=pytest.mark.postgresql
    ),
    pytest.param(
        ("postgresql", "postgresql+psycopg2"),
        id="postgresql-psycopg2",
        marks=pytest.mark.postgresql,
    ),
    pytest.param(
        ("postgresql", "postgresql+pg8000"), id="postgresql-pg8000", marks=pytest.mark.postgresql
    ),
]


@pytest.fixture(params=DRIVERS)
def driver_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on the backend's test server, as a URL with the driver's name."""
    backend, driver = request.param
    url, drop = create_database(backend, tmp_path)
    yield sa.make_url(url).set(drivername=driver).render_as_string(hide_password=False)
    drop()


def test_every_driver_round_trips_and_migrates(
    driver_url: str, make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app(DB_CONNECTION_STRING=driver_url, ENTITYDB_MIGRATIONS_DIR=str(tmp_path / "m"))
    db = EntityDB(app)
    text = "naïve café 🎉"
    with app.app_context():
        db.session.execute(sa.text("CREATE TABLE note (id INTEGER PRIMARY KEY, body VARCHAR(50))"))
        db.session.execute(sa.text("INSERT INTO note VALUES (1, :body)"), {"body": text})
        db.session.commit()
    with app.app_context():
        assert db.session.execute(sa.text("SELECT body FROM note")).scalar() == text
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "init"]).exit_code == 0
    result = runner.invoke(args=["db", "current"])
    assert result.exit_code == 0, result.output
    assert "no revision applied" in result.output
