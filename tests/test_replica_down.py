"""A read replica that is down: one WARNING that it is skipped, and no ERROR before it
(the shared server is the primary; the replica's URL points at a closed port, so no
private server is needed)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.ports import free_port

from flask_entitydb import EntityDB


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("mysql", marks=pytest.mark.mysql),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ],
)
def test_a_replica_that_is_down_gives_one_warning_and_no_error(
    database_url: str, make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    dead = sa.make_url(database_url).set(host="127.0.0.1", port=free_port(), password="r3plica-pw")
    app = make_app(
        SECRET_KEY="k",
        DB_CONNECTION_STRING=database_url,
        ENTITYDB_REPLICAS=[dead.render_as_string(hide_password=False)],
    )
    db = EntityDB(app)

    @app.get("/one")
    def one() -> Any:
        return {"one": db.session.scalar(sa.select(sa.literal(1)))}

    client = app.test_client()
    with caplog.at_level(logging.DEBUG, logger="flask_entitydb"), caplog.at_level(logging.WARNING):
        for _ in range(3):
            response = client.get("/one")
            assert response.status_code == 200 and response.get_json() == {"one": 1}
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in records] == ["WARNING"], caplog.text
    message = records[0].getMessage()
    assert "is skipped" in message and "\n" not in message, message
    assert f":***@127.0.0.1:{dead.port}/" in message, message
    assert "charset" not in message, message  # as configured, not as prepared
    assert "r3plica-pw" not in caplog.text
