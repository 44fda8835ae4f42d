"""An indexed foreign key column (``mapped_column(ForeignKey(...), index=True)``): the
revisions autogenerate writes drop its table without dropping the index first, which
MySQL and MariaDB refuse while the foreign key needs it (error 1553)."""

from __future__ import annotations

from helpers.migration_apps import AppPackage, ok

AUTHOR_ENTITY = """\
class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
"""

BOOK_ENTITY = """\
class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("authors.id"), index=True)
"""


def test_tables_with_an_indexed_foreign_key_are_dropped_and_created_again(
    package: AppPackage,
) -> None:
    package.write_entity("author", AUTHOR_ENTITY)
    package.write_entity("book", BOOK_ENTITY)
    ok(package.cli("init"))

    out = ok(package.cli("migrate", "-m", "authors and books", "-v"))
    assert "add index 'ix_books_author_id' on 'books'" in out
    (first,) = package.revision_files()
    downgrade = first.read_text().split("def downgrade")[1]
    assert "drop_index" not in downgrade and 'op.drop_table("books")' in downgrade
    ok(package.cli("upgrade"))
    assert package.tables() == {"alembic_version", "authors", "books"}
    engine = package.engine()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO authors (id, name) VALUES (1, 'Le Guin')")
            connection.exec_driver_sql(
                "INSERT INTO books (id, title, author_id) VALUES (1, 'Earthsea', 1)"
            )
    finally:
        engine.dispose()

    ok(package.cli("downgrade", "base"))
    assert package.tables() == {"alembic_version"}
    ok(package.cli("upgrade"))
    assert package.tables() == {"alembic_version", "authors", "books"}
    ok(package.cli("check"))

    # a revision dropping the table with the indexed foreign key
    (package.path / "entities" / "book_entity.py").unlink()
    out = ok(package.cli("migrate", "-v", "--allow-drop"))
    assert "drop table 'books'" in out
    assert "drop index" not in out  # the listing is what the file does
    (second,) = set(package.revision_files()) - {first}
    assert second.name.endswith("_drop_table_books.py")
    upgrade, downgrade = second.read_text().split("def downgrade")
    assert "drop_index" not in upgrade and 'op.drop_table("books")' in upgrade
    assert "ix_books_author_id" in downgrade  # created again with the table

    ok(package.cli("upgrade"))
    assert package.tables() == {"alembic_version", "authors"}
    ok(package.cli("check"))

    ok(package.cli("downgrade", "-1"))
    assert package.tables() == {"alembic_version", "authors", "books"}
    assert package.scalar("SELECT COUNT(*) FROM books") == 0
    ok(package.cli("upgrade"))
    assert package.tables() == {"alembic_version", "authors"}


def test_an_index_dropped_from_a_table_that_stays_is_still_dropped(package: AppPackage) -> None:
    package.write_entity("author", AUTHOR_ENTITY)
    package.write_entity("book", BOOK_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate"))
    ok(package.cli("upgrade"))

    package.write_entity("book", BOOK_ENTITY.replace(", index=True", ""))
    out = ok(package.cli("migrate", "-v"))
    assert "drop index 'ix_books_author_id' on 'books'" in out
    (path,) = [p for p in package.revision_files() if "drop_index" in p.name]
    assert 'batch_op.drop_index(batch_op.f("ix_books_author_id"))' in path.read_text()
