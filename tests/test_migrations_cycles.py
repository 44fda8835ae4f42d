"""Entities that reference each other (``Team.captain_id -> players`` and
``Player.team_id -> teams``, with or without ``use_alter=True``): a revision made on
SQLite upgrades on MariaDB and PostgreSQL with every foreign key created, ``check`` finds
nothing to do, and it downgrades."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers.databases import create_database
from helpers.migration_apps import AppPackage, ok

TEAMS_AND_PLAYERS = """\
class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    captain_id: Mapped[int | None] = mapped_column(sa.ForeignKey("players.id"{use_alter}))


class Player(Base):
    __tablename__ = "players"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("teams.id"))
"""


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, str]]:
    made: dict[str, str] = {}
    drops = []
    try:
        for backend in ("mysql", "postgresql"):
            url, drop = create_database(backend, tmp_path)
            made[backend] = url
            drops.append(drop)
        yield made
    finally:
        for drop in drops:
            drop()


def _foreign_keys(url: str) -> set[tuple[str, str]]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        inspector = sa.inspect(engine)
        return {
            (table, fk["referred_table"])
            for table in ("teams", "players")
            if inspector.has_table(table)
            for fk in inspector.get_foreign_keys(table)
        }
    finally:
        engine.dispose()


@pytest.mark.mysql
@pytest.mark.postgresql
@pytest.mark.parametrize("use_alter", [True, False], ids=["use_alter", "plain"])
def test_a_revision_made_on_sqlite_creates_every_foreign_key_elsewhere(
    sqlite_package: AppPackage, servers: dict[str, str], use_alter: bool
) -> None:
    package = sqlite_package
    package.write_entity(
        "team", TEAMS_AND_PLAYERS.format(use_alter=", use_alter=True" if use_alter else "")
    )
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "teams", "--rev-id", "t1"))
    ok(package.cli("upgrade"))
    ok(package.cli("check"))
    both = {("teams", "players"), ("players", "teams")}
    assert _foreign_keys(package.url) == both

    for backend, url in servers.items():
        app = package.create_app(DB_CONNECTION_STRING=url)
        ok(package.cli("upgrade", app=app))
        assert _foreign_keys(url) == both, backend
        out = ok(package.cli("check", app=app))
        assert "matches the entities" in out, (backend, out)
        ok(package.cli("downgrade", "base", app=app))
        assert _foreign_keys(url) == set(), backend
    ok(package.cli("downgrade", "base"))
