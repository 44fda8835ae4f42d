"""The scratch database of the server's judgement (``flask db lint``, ``flask db migrate``'s
online-DDL blocks) starts from the live database's tables when the database is at the
revision before the judged ones, and replays the history otherwise (with a note): the
findings are the same either way."""

from __future__ import annotations

import json

import pytest
from helpers.migration_apps import USER_ENTITY, AppPackage, ok

from flask_entitydb.migrations import _slow
from flask_entitydb.migrations._lint.scratch import COUNTS

SERVERS = [
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("postgresql", marks=pytest.mark.postgresql),
]

FIRST = """
op.create_table("parents", sa.Column("id", sa.Integer, primary_key=True))
op.create_table(
    "items",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=True),
    sa.Column("s", sa.String(40), nullable=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=True),
)
op.create_index("ix_items_s", "items", ["s"])
op.create_table("other", sa.Column("id", sa.Integer, primary_key=True), sa.Column("p", sa.Integer))
"""

SECOND = """
op.add_column("items", sa.Column("note", sa.String(20), nullable=True))
op.create_index("ix_items_n", "items", ["n"])
op.alter_column("items", "n", type_=sa.BigInteger, existing_type=sa.Integer)
op.alter_column("items", "s", type_=sa.String(80), existing_type=sa.String(40))
"""

THIRD = """
op.alter_column("items", "s", type_=sa.String(10), existing_type=sa.String(80))
op.create_foreign_key("fk_other_p", "other", "parents", ["p"], ["id"])
op.drop_index("ix_items_s", table_name="items")
"""


def _lint(package: AppPackage, *args: str) -> dict:
    result = package.cli("lint", "--json", *args)
    assert result.exit_code in (0, 1), result.output
    report: dict = json.loads(result.output)
    return report


def _findings(report: dict) -> list[tuple[str, int, str, str]]:
    return [(f["revision"], f["line"], f["rule"], f["detail"]) for f in report["findings"]]


@pytest.mark.parametrize("backend", SERVERS)
def test_lint_copies_the_live_tables_and_judges_as_the_replay_does(
    package: AppPackage, backend: str
) -> None:
    ok(package.cli("init"))
    package.write_revision("a1", None, FIRST)
    ok(package.cli("upgrade"))
    package.write_revision("b2", "a1", SECOND)
    package.write_revision("c3", "b2", THIRD)

    replayed, copied = COUNTS.replayed_revisions, COUNTS.copied_tables
    live = _lint(package)  # the revisions the database lacks: b2 and c3
    assert COUNTS.replayed_revisions == replayed  # nothing replayed ...
    assert COUNTS.copied_tables > copied  # ... the live tables were copied
    assert not any("replaying" in note for note in live["notes"]), live["notes"]
    assert live["revisions"] == ["b2", "c3"]
    rules = {rule for _, _, rule, _ in _findings(live)}
    assert rules & {"mysql-table-copy", "alter-column-type"}, json.dumps(live)

    # the same revisions, the database no longer at a1: the history is replayed, said once
    ok(package.cli("stamp", "--purge", "base"))
    replay = _lint(package, "b2:c3")
    assert COUNTS.replayed_revisions == replayed + 1
    notes = [note for note in replay["notes"] if "replaying" in note]
    assert notes == [
        "the scratch database was built by replaying 1 revision(s): the database (at base)"
        " is not at the revision before the linted ones"
    ], replay["notes"]
    assert _findings(replay) == _findings(live), (json.dumps(live), json.dumps(replay))


@pytest.mark.parametrize("backend", SERVERS)
def test_a_range_at_the_database_revision_is_not_replayed(
    package: AppPackage, backend: str
) -> None:
    ok(package.cli("init"))
    package.write_revision("a1", None, FIRST)
    package.write_revision("b2", "a1", SECOND)
    ok(package.cli("upgrade", "a1"))
    replayed = COUNTS.replayed_revisions
    report = _lint(package, "b2")
    assert COUNTS.replayed_revisions == replayed
    assert report["notes"] == [], report["notes"]
    assert report["findings"], json.dumps(report)


@pytest.mark.parametrize("backend", SERVERS)
def test_a_slow_judgement_is_named(
    package: AppPackage, backend: str, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    """A step that takes longer than a second is named as it runs (here the limit is 0)."""
    monkeypatch.setattr(_slow, "SLOW_AFTER", 0.0)
    ok(package.cli("init"))
    package.write_revision("a1", None, FIRST)
    package.write_revision("b2", "a1", SECOND)
    with caplog.at_level("WARNING", logger="flask_entitydb"):
        _lint(package, "--all")
    assert "Still judging the operations on a scratch database" in caplog.text, caplog.text


@pytest.mark.mysql
@pytest.mark.parametrize("backend", ["mysql"])
def test_migrate_judges_on_the_live_tables_without_replaying(
    package: AppPackage, backend: str
) -> None:
    """``flask db migrate`` judges the new operations on a copy of the tables they touch;
    the history (three revisions here) is not replayed, and the blocks are the server's."""
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "users"))
    ok(package.cli("upgrade"))
    columns = ""
    for column in ("a", "b"):
        columns += f"    {column}: Mapped[int | None]\n"
        package.write_entity("user", USER_ENTITY + columns)
        ok(package.cli("migrate", "-m", column))
        ok(package.cli("upgrade"))
    retyped = "    b: Mapped[str | None] = mapped_column(sa.String(20))\n"
    package.write_entity("user", USER_ENTITY + "    a: Mapped[int | None]\n" + retyped)
    replayed, copied = COUNTS.replayed_revisions, COUNTS.copied_tables
    ok(package.cli("migrate", "-m", "retype"))
    assert COUNTS.replayed_revisions == replayed
    assert COUNTS.copied_tables > copied
    (path,) = [p for p in package.revision_files() if "retype" in p.name]
    text = path.read_text()
    assert "alter_column(" in text and "online_ddl" not in text.split("def downgrade")[0]


@pytest.mark.mysql
@pytest.mark.parametrize("backend", ["mysql"])
def test_migrate_and_the_lint_of_its_revision_share_one_scratch_database(
    package: AppPackage, backend: str
) -> None:
    """The lint of the revision ``migrate`` writes takes the server's verdicts migrate
    got for the same statements on the same tables: one scratch database for both, and
    the lint says what ``flask db lint`` on its own scratch database says."""
    package.write_entity("user", USER_ENTITY + "    b: Mapped[int | None]\n")
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "users"))
    ok(package.cli("upgrade"))
    changed = (
        "    a: Mapped[int | None]\n    b: Mapped[str | None] = mapped_column(sa.String(20))\n"
    )
    package.write_entity("user", USER_ENTITY + changed)
    databases = COUNTS.databases
    migrated = package.cli("migrate", "-m", "change")
    ok(migrated)
    assert COUNTS.databases == databases + 1, migrated.output
    (path,) = [p for p in package.revision_files() if "change" in p.name]
    assert 'online_ddl(op, "' in path.read_text()  # the new column: judged online
    alone = package.cli("lint")  # the revision not applied, on a scratch database of its own
    assert alone.exit_code == 1, alone.output  # the retyped column copies the table
    assert COUNTS.databases == databases + 2
    lines = [line for line in alone.output.splitlines() if line.strip()]
    assert any("mysql-table-copy" in line for line in lines), alone.output
    for line in lines:
        assert line in migrated.output, (line, migrated.output)
