"""``flask db squash``: one revision equal to the history up to a revision, for new
databases; the replaced revisions stay for databases partway; the equality proof on
scratch databases of the app's own backend (docs/migrations.md, "Squashing the history").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.migration_apps import AppPackage, ok

from flask_entitydb import migrations

AUTHORS = """
op.create_table(
    "authors",
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.UniqueConstraint("name", name="uq_authors_name"),
)
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
    package.write_revision("a1", None, AUTHORS, 'op.drop_table("authors")', "authors")
    package.write_revision("a2", "a1", BOOKS, 'op.drop_table("books")', "books")
    package.write_revision("a3", "a2", PAGES, 'op.drop_column("books", "pages")', "pages")
    package.write_revision("a4", "a3", BORN, 'op.drop_column("authors", "born")', "born")


def squashed_files(package: AppPackage) -> list[Path]:
    return sorted((package.migrations / "squashed").glob("*.py"))


def upgrade(package: AppPackage, revision: str = "head", **options: object) -> list[str]:
    """The revisions an upgrade applied, with ' (squashed)' after a squashed one."""
    app = package.create_app()
    applied = migrations.upgrade(revision, app=app, **options)  # type: ignore[arg-type]
    return [
        item.revision + (" (squashed)" if item.message.startswith("Squash") else "")
        for item in applied
    ]


def test_squash_then_new_partway_and_past_databases(package: AppPackage) -> None:
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
    assert {"authors", "books"} <= package.tables()
    # what it built is what the revisions build: back to base through the revisions
    # themselves, then partway and on through them
    app = package.create_app()
    reverted = [item.revision for item in migrations.downgrade("base", app=app)]
    assert reverted == ["a4", "a3", "a2", "a1"]
    assert upgrade(package, "a1") == ["a1"]
    assert upgrade(package) == ["a2", "a3", "a4"]
    # a database at the squashed revision or past it: nothing changes for it
    package.create_app()
    migrations.downgrade("a3", app=package.create_app())
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


def test_unequal_squash_writes_nothing_and_lists_differences(package: AppPackage) -> None:
    ok(package.cli("init"))
    package.write_revision("a1", None, AUTHORS, 'op.drop_table("authors")')
    package.write_revision(
        "a2",
        "a1",
        """
        op.execute("INSERT INTO authors (id, name) VALUES (1, 'Ursula')")
        op.execute("CREATE VIEW author_names AS SELECT name FROM authors")
        """,
        'op.execute("DROP VIEW author_names")',
    )
    result = package.cli("squash")
    assert result.exit_code == 1, result.output
    assert "nothing was written" in result.output
    assert "rows of table 'authors': missing" not in result.output
    assert "rows of table 'authors': history: 1 row(s): (1, 'Ursula')" in result.output
    assert "view 'author_names': missing after the squashed revision" in result.output
    assert squashed_files(package) == []


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
