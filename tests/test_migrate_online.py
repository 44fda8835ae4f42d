"""``flask db migrate`` on MariaDB states the online algorithm of each change to an existing
table (``with online_ddl(op, ...)``), as the server decides it; the statement the server
receives carries the clause, online and in ``upgrade --sql``, and a server that would
have to copy the table refuses it with a one-line error."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from helpers.migration_apps import (
    USER_ENTITY,
    AppPackage,
    make_package,
    ok,
    without_database_line,
)


@pytest.fixture
def mysql_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppPackage]:
    from helpers.databases import create_database

    url, drop = create_database("mysql", tmp_path)
    try:
        yield from make_package(tmp_path, url, monkeypatch)
    finally:
        drop()


def _users(extra: str) -> str:
    return USER_ENTITY + extra


def _newest(package: AppPackage, word: str) -> str:
    (path,) = [p for p in package.revision_files() if word in p.name]
    return path.read_text()


def _columns(package: AppPackage, table: str) -> dict[str, str]:
    engine = package.engine()
    try:
        return {c["name"]: str(c["type"]) for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _start(package: AppPackage, entity: str = USER_ENTITY) -> None:
    package.write_entity("user", entity)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "users"))
    ok(package.cli("upgrade"))


@pytest.mark.mysql
def test_new_nullable_column_is_instant(mysql_package: AppPackage) -> None:
    package = mysql_package
    _start(package)
    package.write_entity("user", _users("    age: Mapped[int | None]\n"))
    out = ok(package.cli("migrate", "-m", "age"))
    assert "hazard" not in out
    text = _newest(package, "age")
    assert "from flask_entitydb.migrations import online_ddl\n" in text
    assert (
        '    with online_ddl(op, "INSTANT"):\n'
        '        with op.batch_alter_table("users", schema=None) as batch_op:\n'
        '            batch_op.add_column(sa.Column("age", sa.Integer(), nullable=True))\n'
    ) in text
    sql = ok(package.cli("upgrade", "--sql"))
    assert "ALTER TABLE users ADD COLUMN age INTEGER, ALGORITHM=INSTANT;" in sql
    ok(package.cli("upgrade"))
    assert _columns(package, "users")["age"] == "INTEGER"


@pytest.mark.mysql
def test_new_table_and_indexed_foreign_key_column(
    mysql_package: AppPackage, caplog: pytest.LogCaptureFixture
) -> None:
    """Autogenerate's operations hold the entities' columns (with their indexes and foreign
    keys), the file creates those separately: the judgement runs what the file runs, so
    a new table with an index and a new indexed foreign key column are judged (no
    warning); the foreign key itself the server adds by copying (foreign_key_checks on)."""
    package = mysql_package
    _start(package)
    package.write_entity(
        "team",
        """
        class Team(Base):
            __tablename__ = "teams"

            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str] = mapped_column(sa.String(80), index=True)
        """,
    )
    package.write_entity(
        "user",
        _users(
            "    team_id: Mapped[int | None] = mapped_column("
            'sa.ForeignKey("teams.id"), index=True)\n'
        ),
    )
    with caplog.at_level("WARNING", logger="flask_entitydb"):
        result = package.cli("migrate", "-m", "teams")
    assert result.exit_code == 0, result.output
    assert "states no online algorithm" not in caplog.text
    text = _newest(package, "teams")
    body = text.split("def upgrade() -> None:\n", 1)[1].split("def downgrade")[0]
    blocks = body.split("\n\n")
    assert "online_ddl" not in next(b for b in blocks if "create_table(" in b)
    assert 'add_column(sa.Column("team_id"' in next(b for b in blocks if '"INSTANT"' in b)
    assert 'create_index(batch_op.f("ix_users_team_id")' in next(
        b for b in blocks if '"NOCOPY"' in b
    )
    assert "online_ddl" not in next(b for b in blocks if "create_foreign_key(" in b)
    assert ": mysql-table-copy: " in result.output
    ok(package.cli("upgrade"))
    assert "team_id" in _columns(package, "users")


@pytest.mark.mysql
def test_later_hooks_still_have_alembic_op(mysql_package: AppPackage) -> None:
    """The judgement replays the revisions with an ``op`` of its own: a
    process_revision_directives hook of the app's env.py, run after it, still finds
    Alembic's."""
    package = mysql_package
    _start(package)
    (package.migrations / "env.py").write_text(
        "from alembic import op\n"
        "from flask_entitydb.migrations import run_migrations\n\n\n"
        "def hook(context, revision, directives):\n"
        "    assert op.get_context() is context\n"
        "    directives[0].message = 'hooked'\n\n\n"
        "run_migrations(process_revision_directives=hook)\n"
    )
    package.write_entity("user", _users("    age: Mapped[int | None]\n"))
    ok(package.cli("migrate"))
    assert 'with online_ddl(op, "INSTANT"):' in _newest(package, "hooked")


@pytest.mark.mysql
def test_new_index_is_nocopy_and_type_change_unmarked(mysql_package: AppPackage) -> None:
    """Adding an index: MariaDB builds it in place without rebuilding the table (NOCOPY,
    not INSTANT); changing INT to VARCHAR copies the table: no block, and the lint
    finding says so. One table's batch block is split where the algorithm changes."""
    package = mysql_package
    _start(package, _users("    age: Mapped[int | None]\n    code: Mapped[int | None]\n"))
    package.write_entity(
        "user",
        _users(
            "    age: Mapped[int | None] = mapped_column(index=True)\n"
            "    code: Mapped[str | None] = mapped_column(sa.String(20))\n"
            "    note: Mapped[str | None] = mapped_column(sa.String(20))\n"
        ),
    )
    result = package.cli("migrate", "-m", "index")
    assert result.exit_code == 0, result.output
    text = _newest(package, "index")
    body = text.split("def upgrade() -> None:\n", 1)[1].split("def downgrade")[0]
    assert '    with online_ddl(op, "NOCOPY"):\n' in body
    assert '    with online_ddl(op, "INSTANT"):\n' in body
    assert '"INPLACE"' not in body
    blocks = body.split("\n\n")
    instant = next(b for b in blocks if '"INSTANT"' in b)
    nocopy = next(b for b in blocks if '"NOCOPY"' in b)
    plain = next(b for b in blocks if "alter_column(" in b)
    assert 'add_column(sa.Column("note"' in instant
    assert 'create_index(batch_op.f("ix_users_age")' in nocopy
    assert "online_ddl" not in plain
    assert ": mysql-table-copy: op.alter_column('users', 'code'" in result.output
    assert "Cannot change column type" in result.output
    assert "1 hazard in 1 revision (mysql)" in result.output, result.output

    # offline, a mysql:// URL does not say the server is MariaDB: MySQL's INPLACE is written
    sql = ok(package.cli("upgrade", "--sql"))
    assert "CREATE INDEX ix_users_age ON users (age) ALGORITHM=INPLACE LOCK=NONE;" in sql
    assert "ALTER TABLE users MODIFY code VARCHAR(20) NULL;" in sql
    ok(package.cli("upgrade"))
    assert _columns(package, "users")["code"] == "VARCHAR(20)"
    assert _has_index(package)

    # the downgrade is judged too, on the scratch database after the upgrade
    down = text.split("def downgrade() -> None:\n", 1)[1]
    blocks = down.split("\n\n")
    assert 'drop_index(batch_op.f("ix_users_age"))' in next(b for b in blocks if "NOCOPY" in b)
    assert 'drop_column("note")' in next(b for b in blocks if "INSTANT" in b)
    assert "online_ddl" not in next(b for b in blocks if "alter_column(" in b)
    sql = ok(package.cli("downgrade", "--sql", "head:-1"))
    assert "ALTER TABLE users DROP INDEX ix_users_age, ALGORITHM=INPLACE, LOCK=NONE;" in sql
    assert "ALTER TABLE users DROP COLUMN note, ALGORITHM=INSTANT;" in sql
    ok(package.cli("downgrade", "-1"))
    assert not _has_index(package)
    assert "note" not in _columns(package, "users")


@pytest.mark.mysql
def test_rebuild_is_inplace_with_an_estimate(mysql_package: AppPackage) -> None:
    """A column made NOT NULL: MariaDB refuses INSTANT and NOCOPY and runs it INPLACE,
    rebuilding the table: migrate's block says so, and lint's note gives a rough time
    from the table's size; an index on the same table is NOCOPY (no rebuild)."""
    package = mysql_package
    _start(package, _users("    age: Mapped[int | None]\n"))
    engine = package.engine()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO users (name, age) SELECT MD5(seq), seq FROM seq_1_to_20000"
            )
            connection.exec_driver_sql("ANALYZE TABLE users")
    finally:
        engine.dispose()
    package.write_entity("user", _users("    age: Mapped[int] = mapped_column(index=True)\n"))
    result = package.cli("migrate", "-m", "strict")
    assert result.exit_code == 0, result.output
    body = _newest(package, "strict").split("def downgrade")[0]
    assert (
        "    # MariaDB rebuilds the table in place ('flask db lint' says how long)\n"
        '    with online_ddl(op, "INPLACE"):\n'
    ) in body, body
    assert "nullable=False" in next(b for b in body.split("\n\n") if '"INPLACE"' in b)
    assert "ix_users_age" in next(b for b in body.split("\n\n") if '"NOCOPY"' in b)
    (rebuild,) = [line for line in result.output.splitlines() if line.startswith("Rebuild:")]
    print(rebuild)  # the example in docs/safe-migrations.md
    assert "alter_column" in rebuild and "Note:" not in result.output, result.output
    assert "ALGORITHM=INPLACE, LOCK=NONE but not NOCOPY, so it rebuilds 'users'" in rebuild
    assert re.search(r"takes (under a second|about \d+ s) for the \d+ rows \(\d+\.\d MB\)", rebuild)
    assert "0 hazards in 1 revision (mysql)." in result.output, result.output
    assert "has hazards" not in result.output, result.output

    lint = package.cli("lint", "--json")
    assert lint.exit_code == 0, lint.output
    verdicts = {v["operation"].split("(")[0]: v for v in json.loads(lint.output)["online"]}
    assert verdicts["op.create_index"]["algorithm"] == "NOCOPY"
    assert not verdicts["op.create_index"]["rebuilds"]
    assert "in place without rebuilding 'users'" in verdicts["op.create_index"]["message"]
    rebuilt = verdicts["op.alter_column"]
    assert (rebuilt["algorithm"], rebuilt["rebuilds"]) == ("INPLACE", True)
    assert rebuilt["table"] == "users"
    assert rebuilt["rows"] > 10_000 and rebuilt["megabytes"] > 0 and rebuilt["seconds"] >= 0
    ok(package.cli("upgrade"))
    assert package.scalar("SELECT COUNT(*) FROM users WHERE age IS NOT NULL") == 20000


def _has_index(package: AppPackage) -> bool:
    return bool(
        package.scalar(
            "SELECT COUNT(*) FROM information_schema.statistics"
            " WHERE table_schema = DATABASE() AND index_name = 'ix_users_age'"
        )
    )


@pytest.mark.mysql
def test_dropped_index_is_nocopy_and_lints_clean(mysql_package: AppPackage) -> None:
    """MariaDB's DROP INDEX takes no algorithm: the block runs it as ALTER TABLE ... DROP
    INDEX, which does (NOCOPY); lint judges it the same way (no 'server check stopped'
    note)."""
    package = mysql_package
    _start(package, _users("    age: Mapped[int | None] = mapped_column(index=True)\n"))
    package.write_entity("user", _users("    age: Mapped[int | None]\n"))
    out = ok(package.cli("migrate", "-m", "unindex"))
    assert "hazard" not in out and "Note:" not in out, out
    text = _newest(package, "unindex")
    assert '    with online_ddl(op, "NOCOPY"):\n' in text.split("def downgrade")[0]
    assert "ALTER TABLE users DROP INDEX ix_users_age, ALGORITHM=INPLACE, LOCK=NONE;" in ok(
        package.cli("upgrade", "--sql")
    )
    ok(package.cli("upgrade"))
    assert not _has_index(package)
    assert "0 hazards in 2 revisions (mysql)" in ok(package.cli("lint", "--all"))


def _marked_block(package: AppPackage, algorithm: str, change: str) -> Result:
    """Table 't' (id, n INTEGER) applied, then revision 'b2' changing 'n' by hand in an
    ``online_ddl(op, algorithm)`` block; lint's result on 'b2'."""
    ok(package.cli("init"))
    package.write_revision(
        "a1",
        None,
        'op.create_table("t", sa.Column("id", sa.Integer, primary_key=True),'
        ' sa.Column("n", sa.Integer))',
    )
    ok(package.cli("upgrade"))
    package.write_revision(
        "b2",
        "a1",
        f"""
        from flask_entitydb.migrations import online_ddl

        with online_ddl(op, "{algorithm}"):
            op.alter_column("t", "n", {change}, existing_type=sa.Integer())
        """,
    )
    return package.cli("lint", "b2")


@pytest.mark.mysql
def test_marked_copy_is_refused_by_the_server(mysql_package: AppPackage) -> None:
    """A hand-written INSTANT block on a change the server can only make by copying: the
    server refuses the statement (1846: it received the clause), the command says so in
    one line, and the table is unchanged; lint says the upgrade will fail."""
    package = mysql_package
    lint = _marked_block(package, "INSTANT", "type_=sa.String(20)")
    assert lint.exit_code == 1
    assert "online_ddl(op, 'INSTANT') is refused, so the upgrade fails" in lint.output

    result = package.cli("upgrade")
    assert result.exit_code == 1
    lines = [line for line in without_database_line(result.output).splitlines() if line.strip()]
    assert len(lines) == 2, result.output
    started, line = lines
    assert started == "[1/1] Applying b2: revision b2"
    assert line.startswith("Error: Revision 'b2' (revision b2) failed: ")
    assert "forbids: (1846, 'ALGORITHM=INSTANT is not supported." in line
    assert "failed: the server would have to copy the table, blocking writes, which the" in line
    assert "pt-online-schema-change" in line
    assert "remove the 'online_ddl' block to let the server copy the table" in line
    assert _columns(package, "t")["n"] == "INTEGER"
    assert package.version() == {"a1"}

    from flask_entitydb import MigrationError
    from flask_entitydb.migrations import upgrade

    # nothing of it was committed (the server refused its only statement): it runs again,
    # without 'flask db repair', and fails the same way
    app = package.create_app()
    with pytest.raises(MigrationError) as info:
        upgrade(app=app)
    cause = info.value.__cause__
    assert isinstance(cause, sa.exc.DBAPIError)
    assert cause.statement is not None
    assert cause.statement.endswith("MODIFY n VARCHAR(20) NULL, ALGORITHM=INSTANT")


@pytest.mark.mysql
def test_marked_nocopy_rebuild_is_refused_by_the_server(mysql_package: AppPackage) -> None:
    """A hand-written NOCOPY block on a change MariaDB makes by rebuilding the table (NOT
    NULL): lint says the upgrade will fail, and it does, in one line that says to use
    INPLACE; the statement the server received carried ALGORITHM=NOCOPY."""
    package = mysql_package
    lint = _marked_block(package, "NOCOPY", "nullable=False")
    assert lint.exit_code == 1
    assert "online_ddl(op, 'NOCOPY') is refused, so the upgrade fails" in lint.output

    result = package.cli("upgrade")
    assert result.exit_code == 1
    (line,) = [x for x in without_database_line(result.output).splitlines() if "Error" in x]
    assert "MariaDB would have to rebuild the table, which the revision's online_ddl(op," in line
    assert "use online_ddl(op, 'INPLACE')" in line
    assert "ALGORITHM=NOCOPY is not supported" in line
    assert package.version() == {"a1"}


@pytest.mark.mysql
def test_history_that_needs_a_database_does_not_stop_the_judgement(
    mysql_package: AppPackage, caplog: pytest.LogCaptureFixture
) -> None:
    """A revision whose upgrade() needs a live database cannot be replayed on a scratch
    database, but migrate does not replay the history: the scratch database starts from
    the live database's tables, so the new operation is still judged."""
    package = mysql_package
    _start(package)
    (first,) = package.revision_files()
    first.write_text(
        first.read_text().replace(
            "    op.create_table(",
            "    op.get_bind().execute(sa.text('SELECT 1')).scalar()\n    op.create_table(",
            1,
        )
    )
    package.write_entity("user", _users("    age: Mapped[int | None]\n"))
    with caplog.at_level("WARNING", logger="flask_entitydb"):
        result = package.cli("migrate", "-m", "age")
    assert result.exit_code == 0, result.output
    assert 'with online_ddl(op, "INSTANT"):' in _newest(package, "age")
    assert "states no online algorithm" not in caplog.text
    assert "replaying" not in caplog.text


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ],
)
def test_other_backends_are_unchanged(package: AppPackage, backend: str) -> None:
    """SQLite and PostgreSQL revisions get no block; a MariaDB-made revision with a block
    runs there as it is (MariaDB: the tests above)."""
    _start(package)
    package.write_entity("user", _users("    age: Mapped[int | None]\n"))
    ok(package.cli("migrate", "-m", "age"))
    assert "online_ddl" not in _newest(package, "age")
    ok(package.cli("upgrade"))
    (head,) = package.version()
    package.write_revision(
        "zz",
        head,
        """
        from flask_entitydb.migrations import online_ddl

        with online_ddl(op, "INPLACE"):
            with op.batch_alter_table("users") as batch_op:
                batch_op.add_column(sa.Column("extra", sa.Integer(), nullable=True))
        """,
    )
    ok(package.cli("upgrade"))
    assert "extra" in _columns(package, "users")
