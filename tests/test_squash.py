"""``flask db squash``: one revision equal to the history up to a revision, for new
databases; the replaced revisions stay for databases partway; the equality proof on
scratch databases of the app's own backend (docs/migrations.md, "Squashing the history").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers.migration_apps import USER_ENTITY, AppPackage, ok
from test_binds import EVENT_ENTITY
from test_example import EXAMPLE, flask

from flask_entitydb import migrations

AUTHORS = """
op.create_table(
    "authors",
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("kind", sa.Enum("person", "group", name="author_kind"), nullable=True),
    sa.UniqueConstraint("name", name="uq_authors_name"),
)
"""
DROP_AUTHORS = """
op.drop_table("authors")
sa.Enum(name="author_kind").drop(op.get_bind(), checkfirst=True)
"""
BOOKS = """
op.create_table(
    "books",
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("author_id", sa.Integer(), sa.ForeignKey("authors.id", name="fk_books_author"),
              nullable=False),
)
op.create_index("ix_books_title", "books", ["title"])
"""
PAGES = """
op.add_column("books", sa.Column("pages", sa.Integer(), server_default="0", nullable=False))
"""
BORN = 'op.add_column("authors", sa.Column("born", sa.Date(), nullable=True))'


def write_history(package: AppPackage) -> None:
    """a1 authors, a2 books, a3 books.pages, a4 authors.born."""
    ok(package.cli("init"))
    package.write_revision("a1", None, AUTHORS, DROP_AUTHORS, "authors")
    package.write_revision("a2", "a1", BOOKS, 'op.drop_table("books")', "books")
    package.write_revision("a3", "a2", PAGES, 'op.drop_column("books", "pages")', "pages")
    package.write_revision("a4", "a3", BORN, 'op.drop_column("authors", "born")', "born")


def squashed_files(package: AppPackage) -> list[Path]:
    return sorted((package.migrations / "squashed").glob("*.py"))


def upgrade(package: AppPackage, revision: str = "head", **options: object) -> list[str]:
    """The revisions an upgrade applied, with ' (squashed)' after a squashed one."""
    app = package.create_app()
    applied = migrations.upgrade(revision=revision, app=app, **options)  # type: ignore[arg-type]
    return [
        item.revision + (" (squashed)" if item.message.startswith("Squash") else "")
        for item in applied
    ]


def test_squash_then_new_partway_and_past_databases(
    package: AppPackage, caplog: pytest.LogCaptureFixture
) -> None:
    write_history(package)
    result = package.cli("squash", "--to", "a3")
    assert result.exit_code == 0, result.output
    assert "Squashed 3 revision(s) (a1 .. a3)" in result.output
    [written] = squashed_files(package)
    text = written.read_text()
    assert "revision = 'a3'" in text and "down_revision = None" in text
    assert "replaces = ('a1', 'a2', 'a3')" in text
    assert len(package.revision_files()) == 4  # the replaced revisions stay

    # a new database: the squashed revision, then the revisions after it
    assert upgrade(package) == ["a3 (squashed)", "a4"]
    assert package.version() == {"a4"}
    # the journal knows a3 was applied from the squashed file: a3's own file is not "edited"
    assert upgrade(package) == []
    assert "was edited" not in caplog.text
    assert {"authors", "books"} <= package.tables()
    # what it built is what the revisions build: back to base through the revisions
    # themselves, then partway and on through them
    app = package.create_app()
    reverted = [item.revision for item in migrations.downgrade(revision="base", app=app)]
    assert reverted == ["a4", "a3", "a2", "a1"]
    assert upgrade(package, "a1") == ["a1"]
    assert upgrade(package) == ["a2", "a3", "a4"]
    # a database at the squashed revision or past it: nothing changes for it
    package.create_app()
    migrations.downgrade(revision="a3", app=package.create_app())
    assert upgrade(package) == ["a4"]
    # history, heads and current show the revisions as they are
    history = ok(package.cli("history"))
    assert all(rev in history for rev in ("a1", "a2", "a3", "a4"))
    assert "a4 (head)" in ok(package.cli("heads"))
    assert "a4" in ok(package.cli("current"))
    assert upgrade(package, squashed=False) == []


def test_upgrade_without_squashed(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    write_history(package)
    ok(package.cli("squash"))
    assert upgrade(package, squashed=False) == ["a1", "a2", "a3", "a4"]
    ok(package.cli("downgrade", "base"))
    out = ok(package.cli("upgrade", "--no-squashed"))
    assert "Applied a1" in out and "Squash" not in out
    assert package.version() == {"a4"}


def test_squashed_on_another_backend_is_not_used(
    sqlite_package: AppPackage, caplog: pytest.LogCaptureFixture
) -> None:
    package = sqlite_package
    write_history(package)
    ok(package.cli("squash"))
    [written] = squashed_files(package)
    text = written.read_text()
    written.write_text(text.replace("squashed_on = 'sqlite'", "squashed_on = 'postgresql'"))
    assert upgrade(package) == ["a1", "a2", "a3", "a4"]
    assert "written on another backend than this database's (sqlite)" in caplog.text


def test_unequal_squash_writes_nothing_and_lists_differences(package: AppPackage) -> None:
    ok(package.cli("init"))
    package.write_revision("a1", None, AUTHORS, DROP_AUTHORS)
    package.write_revision(
        "a2",
        "a1",
        'op.execute("CREATE VIEW author_names AS SELECT name FROM authors")',
        'op.execute("DROP VIEW author_names")',
    )
    result = package.cli("squash")
    assert result.exit_code == 1, result.output
    assert "nothing was written" in result.output
    assert "view 'author_names': missing after the squashed revision" in result.output
    assert squashed_files(package) == []


def test_rows_the_revisions_inserted_are_squashed_too(package: AppPackage) -> None:
    """Seed rows (op.execute, op.bulk_insert) go into the squashed revision, with the
    sequences' positions on PostgreSQL; rows it cannot write are listed as differences."""
    ok(package.cli("init"))
    package.write_revision("a1", None, AUTHORS, DROP_AUTHORS)
    package.write_revision("a2", "a1", BORN, 'op.drop_column("authors", "born")')
    package.write_revision(
        "a3",
        "a2",
        """
        op.execute("INSERT INTO authors (name, kind) VALUES ('Ursula', 'person')")
        op.bulk_insert(
            sa.table("authors", sa.column("name"), sa.column("born")),
            [{"name": "Octavia", "born": __import__("datetime").date(1947, 6, 22)}],
        )
        """,
        'op.execute("DELETE FROM authors")',
    )
    package.write_revision("a4", "a3", BORN.replace("born", "died"))
    result = package.cli("squash", "--to", "a3")
    assert result.exit_code == 0, result.output
    text = squashed_files(package)[0].read_text()
    assert "op.bulk_insert(" in text and "'Octavia'" in text
    assert upgrade(package) == ["a3 (squashed)", "a4"]
    # the app goes on inserting where the history left off
    engine = package.engine()
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO authors (name) VALUES ('Kim')"))
            rows = connection.execute(sa.text("SELECT id, name, born FROM authors ORDER BY id"))
            found = [(row[0], row[1], str(row[2])) for row in rows]
    finally:
        engine.dispose()
    assert found == [(1, "Ursula", "None"), (2, "Octavia", "1947-06-22"), (3, "Kim", "None")]


def test_dry_run_prints_and_writes_nothing(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    write_history(package)
    result = package.cli("squash", "--dry-run", "-m", "Everything so far")
    assert result.exit_code == 0, result.output
    assert "def upgrade():" in result.output and "op.create_table(" in result.output
    assert '"""Everything so far' in result.output
    assert "Dry run:" in result.output
    assert squashed_files(package) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "nope"], "Unknown revision 'nope'"),
        (["--to", "b1"], "'b1' merges 'a2', 'x1', so the history up to 'b1' is not a single"),
        (["--to", "a2"], "'a1' branches (also followed by 'x1')"),
        ([], "several heads ('b1', 'y1')"),
    ],
)
def test_bad_input_is_one_line(sqlite_package: AppPackage, args: list[str], message: str) -> None:
    package = sqlite_package
    ok(package.cli("init"))
    package.write_revision("a1", None, AUTHORS)
    package.write_revision("a2", "a1", BORN)
    package.write_revision("x1", "a1", "pass")
    package.write_revision("b1", ("a2", "x1"), "pass")  # type: ignore[arg-type]
    package.write_revision("y1", None, "pass")
    result = package.cli("squash", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.count("\n") == 1
    assert squashed_files(package) == []


def test_already_squashed_and_changed_revisions(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    write_history(package)
    ok(package.cli("squash", "--to", "a2"))
    result = package.cli("squash", "--to", "a2")
    assert result.exit_code == 1
    assert "already squashed" in result.output
    package.write_revision("a2", "a1", BOOKS + "\n# edited", 'op.drop_table("books")', "books")
    result = package.cli("upgrade")
    assert result.exit_code == 1
    assert "changed since it was written" in result.output
    assert package.version() == set()


def write_long_history(package: AppPackage, count: int) -> None:
    """g000 creates 'wide'; every 20th revision a table referring to it, with an index;
    the others add a column to 'wide'."""
    ok(package.cli("init"))
    package.write_revision(
        "g000", None, 'op.create_table("wide", sa.Column("id", sa.Integer(), primary_key=True))'
    )
    for number in range(1, count):
        down = f"g{number - 1:03d}"
        if number % 20 == 0:
            upgrade = f"""
            op.create_table(
                "side{number}",
                sa.Column("id", sa.Integer(), primary_key=True),
                sa.Column("wide_id", sa.Integer(), sa.ForeignKey("wide.id"), nullable=False),
            )
            op.create_index("ix_side{number}_wide_id", "side{number}", ["wide_id"])
            """
            downgrade = f'op.drop_table("side{number}")'
        else:
            upgrade = f'op.add_column("wide", sa.Column("c{number:03d}", sa.Integer()))'
            downgrade = f'op.drop_column("wide", "c{number:03d}")'
        package.write_revision(f"g{number:03d}", down, upgrade, downgrade)


@pytest.mark.slow
def test_squash_of_200_revisions(package: AppPackage) -> None:
    write_long_history(package, 200)
    result = package.cli("squash", "--to", "g189")
    assert result.exit_code == 0, result.output
    assert "Squashed 190 revision(s) (g000 .. g189)" in result.output
    # a new database: the squashed revision and the ten after it
    assert upgrade(package) == ["g189 (squashed)"] + [f"g{n}" for n in range(190, 200)]
    engine = package.engine()
    try:
        assert len(sa.inspect(engine).get_columns("wide")) == 1 + 199 - 9
    finally:
        engine.dispose()
    # partway (back through the revisions themselves), then on through them
    app = package.create_app()
    reverted = migrations.downgrade(revision="g185", app=app)
    assert [item.revision for item in reverted] == [f"g{n}" for n in range(199, 185, -1)]
    assert upgrade(package) == [f"g{n}" for n in range(186, 200)]
    assert package.version() == {"g199"}


EXAMPLE_REVISION = """\
from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade():
    {upgrade}


def downgrade():
    {downgrade}
"""


@pytest.mark.slow
def test_squash_of_the_example_app(tmp_path: Path, database_url: str) -> None:
    """The example app (examples/bookshelf) with two more revisions, squashed up to the
    first of them through the real ``flask`` command."""
    app = tmp_path / "bookshelf"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("__pycache__", "instance"))
    versions = app / "bookshelf" / "migrations" / "versions"
    for rev, down, up, down_op in (
        (
            "0002",
            "0001",
            'op.add_column("books", sa.Column("year", sa.Integer(), nullable=True))',
            'op.drop_column("books", "year")',
        ),
        (
            "0003",
            "0002",
            'op.create_index("ix_books_year", "books", ["year"])',
            'op.drop_index("ix_books_year", table_name="books")',
        ),
    ):
        text = EXAMPLE_REVISION.format(rev=rev, down=down, upgrade=up, downgrade=down_op)
        (versions / f"{rev}_more.py").write_text(text)
    env = {"DB_CONNECTION_STRING": database_url}

    squashed = flask(app, "db", "squash", "--to", "0002", **env)
    assert squashed.returncode == 0, squashed.stderr
    assert "Squashed 2 revision(s) (0001 .. 0002)" in squashed.stdout
    assert len(list((app / "bookshelf" / "migrations" / "squashed").glob("0002_*.py"))) == 1

    new = flask(app, "db", "upgrade", **env)
    assert new.returncode == 0, new.stderr
    assert "Applied 0002: Squash of 2 revision(s) up to 0002" in new.stdout
    assert "Applied 0001" not in new.stdout and "Applied 0003" in new.stdout

    back = flask(app, "db", "downgrade", "0001", **env)
    assert back.returncode == 0, back.stderr
    partway = flask(app, "db", "upgrade", **env)
    assert partway.returncode == 0, partway.stderr
    assert "Applied 0002 (" in partway.stdout and "Squash" not in partway.stdout
    assert "Applied 0003" in partway.stdout
    checked = flask(app, "db", "check", **env)
    assert checked.returncode == 1  # the entities have no 'year': the check still compares
    assert "year" in checked.stdout + checked.stderr


def test_squash_per_bind(
    sqlite_package: AppPackage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = sqlite_package
    analytics = tmp_path / "analytics.sqlite3"
    monkeypatch.setenv("DB_CONNECTION_STRING_ANALYTICS", f"sqlite:///{analytics}")
    package.write_entity("user", USER_ENTITY)
    package.write_entity("event", EVENT_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "first"))
    out = ok(package.cli("squash", "--bind", "analytics"))
    assert "Squashed 1 revision(s)" in out
    assert len(list((package.migrations / "binds" / "analytics" / "squashed").glob("*.py"))) == 1
    assert squashed_files(package) == []
    out = ok(package.cli("upgrade"))
    assert out.index("[default]") < out.index("Applied") < out.index("[analytics]")
    assert "Squash of 1 revision(s)" in out[out.index("[analytics]") :]
    assert "Squash" not in out[: out.index("[analytics]")]


def test_replaced_revisions_dropped_later(sqlite_package: AppPackage) -> None:
    """Once every database is at the squashed revision or past it, the replaced files go
    and the squashed file moves into versions/: it becomes the first revision."""
    package = sqlite_package
    write_history(package)
    ok(package.cli("squash", "--to", "a3"))
    assert upgrade(package) == ["a3 (squashed)", "a4"]
    [written] = squashed_files(package)
    for path in package.revision_files():
        if path.name.startswith(("a1_", "a2_", "a3_")):
            path.unlink()
    written.rename(package.versions / written.name)
    assert "a4 (head)" in ok(package.cli("current"))
    assert upgrade(package) == []
    app = package.create_app()
    reverted = migrations.downgrade(revision="base", app=app)
    assert [item.revision for item in reverted] == ["a4", "a3"]
    assert package.tables() <= {"alembic_version"}
    assert upgrade(package) == ["a3 (squashed)", "a4"]


def test_a_failing_history_is_named(package: AppPackage) -> None:
    ok(package.cli("init"))
    package.write_revision("a1", None, AUTHORS, DROP_AUTHORS)
    package.write_revision("a2", "a1", 'op.execute("INSERT INTO authors (nope) VALUES (1)")')
    result = package.cli("squash")
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: The history up to 'a2' failed on a scratch database: Revision 'a2'"
    )
    assert squashed_files(package) == []


def test_the_journal_knows_the_squashed_folder() -> None:
    from flask_entitydb.migrations._journal.checks import SQUASHED_FOLDER
    from flask_entitydb.migrations._squash.files import FOLDER

    assert SQUASHED_FOLDER == FOLDER
