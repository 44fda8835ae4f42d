"""``localhost`` with a port reaches that port over TCP, with every MySQL/MariaDB driver,
against a private MariaDB on a port of its own (mysqlclient and mariadb read a bare
``localhost`` as "the Unix socket", which silently reached the server on 3306)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.servers import MariaDBServer

from flask_entitydb import EntityDB

pytestmark = [
    pytest.mark.private_server,
    pytest.mark.filterwarnings("ignore:No entity classes found"),
]


@pytest.mark.parametrize(
    "driver",
    ["mysql+mysqldb", "mysql+pymysql", "mysql+mysqlconnector", "mariadb+mariadbconnector"],
)
def test_mysql_localhost_with_a_port_connects_to_that_port(
    plain_mariadb: MariaDBServer, driver: str, make_app: Callable[..., Flask]
) -> None:
    url = f"{driver}://root@localhost:{plain_mariadb.port}/test"
    app = make_app(DB_CONNECTION_STRING=url)
    db = EntityDB(app)
    with app.app_context():
        assert db.session.execute(sa.text("SELECT @@port")).scalar() == plain_mariadb.port
        assert repr(db).startswith(f"<EntityDB {driver}://root@localhost:{plain_mariadb.port}/test")
