"""Autogenerate without false positives or false negatives for the column types entity
authors commonly use, and the upgrade -> downgrade base -> upgrade round trip, on SQLite,
MariaDB and PostgreSQL."""

from __future__ import annotations

from helpers.migration_apps import USER_ENTITY, AppPackage, ok, without_database_line

ARTICLE = """\
class Status(enum.Enum):
    draft = "draft"
    published = "published"


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), server_default="untitled", index=True)
    quote: Mapped[str] = mapped_column(sa.String(50), server_default="it's")
    body: Mapped[str] = mapped_column(sa.Text)
    published: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    featured: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    archived: Mapped[bool] = mapped_column(default=False)
    status: Mapped[Status] = mapped_column(
        sa.Enum(Status, name="article_status"), server_default="draft"
    )
    data: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    price: Mapped[decimal.Decimal] = mapped_column(sa.Numeric(10, 2), server_default="0")
    views: Mapped[int] = mapped_column(server_default=sa.text("0"))
    ratio: Mapped[float | None] = mapped_column(sa.Float)
    day: Mapped[datetime.date | None] = mapped_column(sa.Date)
    created_at: Mapped[datetime.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    updated_at: Mapped[datetime.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    code: Mapped[str] = mapped_column(sa.String(20), unique=True)
    big: Mapped[int | None] = mapped_column(sa.BigInteger)
    uid: Mapped[str | None] = mapped_column(sa.Uuid(as_uuid=False))


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(sa.ForeignKey("articles.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(sa.String(500))
"""


def _enum_types(package: AppPackage) -> set[str]:
    if not package.url.startswith("postgresql"):
        return set()
    engine = package.engine()
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT typname FROM pg_type WHERE typtype = 'e'")
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def test_common_types_round_trip_without_false_positives(package: AppPackage) -> None:
    package.write_entity("article", ARTICLE)
    ok(package.cli("init"))
    out = ok(package.cli("migrate", "-m", "articles", "-v"))
    assert "add table 'articles'" in out and "add table 'comments'" in out
    ok(package.cli("upgrade"))

    # right after upgrade: no difference reported, and migrate finds nothing to write
    assert "matches the entities" in ok(package.cli("check"))
    assert "No changes" in ok(package.cli("migrate"))

    ok(package.cli("downgrade", "base"))
    assert package.tables() == {"alembic_version"}
    assert _enum_types(package) == set()  # PostgreSQL: no enum type left behind

    ok(package.cli("upgrade"))
    assert package.tables() == {"alembic_version", "articles", "comments"}
    ok(package.cli("check"))


def _apply_articles(package: AppPackage) -> None:
    """The articles and comments tables, made by ``flask db migrate`` and applied."""
    package.write_entity("article", ARTICLE)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "articles"))
    ok(package.cli("upgrade"))


def test_changed_enum_values_are_detected_and_migrated(package: AppPackage) -> None:
    _apply_articles(package)
    engine = package.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO articles (id, body, code, archived) VALUES (1, 'text', 'a1', false)"
        )
        connection.exec_driver_sql(
            "INSERT INTO comments (id, article_id, text) VALUES (1, 1, 'first')"
        )
    engine.dispose()

    package.write_entity(
        "article",
        ARTICLE.replace(
            '    published = "published"\n',
            '    published = "published"\n    withdrawn_by_author = "withdrawn_by_author"\n',
        ),
    )
    result = package.cli("check")
    assert result.exit_code == 1, result.output
    assert "status" in result.output or "article_status" in result.output

    out = ok(package.cli("migrate", "-m", "withdrawn", "-v"))
    if package.url.startswith("postgresql"):  # alembic-postgresql-enum's operation, in words
        expected = "add value 'withdrawn_by_author' to enum type 'public.article_status'"
        assert f"  - {expected}\n" in out, out
        assert "op.add_enum_value" not in out
    ok(package.cli("upgrade"))
    assert "matches the entities" in ok(package.cli("check")), out

    # rebuilding 'articles' (SQLite batch mode) kept the rows that refer to it
    assert package.scalar("SELECT COUNT(*) FROM comments") == 1
    assert package.scalar("SELECT status FROM articles WHERE id = 1") == "draft"

    ok(package.cli("downgrade", "base"))
    assert package.tables() == {"alembic_version"}
    assert _enum_types(package) == set()
    ok(package.cli("upgrade"))
    ok(package.cli("check"))


def test_changed_server_default_and_type_are_detected(package: AppPackage) -> None:
    _apply_articles(package)

    package.write_entity(
        "article",
        ARTICLE.replace('server_default="untitled"', 'server_default="no title"').replace(
            "sa.String(500)", "sa.String(1000)"
        ),
    )
    result = package.cli("check")
    assert result.exit_code == 1, result.output
    assert "change column 'articles.title': server default" in result.output
    assert "change column 'comments.text': type VARCHAR(500) -> VARCHAR(1000)" in result.output
    ok(package.cli("migrate", "-m", "defaults"))
    ok(package.cli("upgrade"))
    ok(package.cli("check"))


SQLITE_ENUM_WARNING = (
    "Warning: changes to the values of Enum columns are not detected on SQLite (it has no"
    " enum type); run 'flask db check' against MariaDB or PostgreSQL to see them.\n"
)


def test_sqlite_says_enum_value_changes_are_not_detected(package: AppPackage) -> None:
    package.write_entity("article", ARTICLE)
    ok(package.cli("init"))
    on_sqlite = package.url.startswith("sqlite")
    result = package.cli("migrate", "-m", "articles", "-v")
    assert result.exit_code == 0, result.output
    assert without_database_line(result.stderr) == (SQLITE_ENUM_WARNING if on_sqlite else "")
    ok(package.cli("upgrade"))
    result = package.cli("check")
    assert result.exit_code == 0, result.output
    assert without_database_line(result.stderr) == (SQLITE_ENUM_WARNING if on_sqlite else "")

    # no Enum column, no warning
    package.write_entity("article", USER_ENTITY)
    result = package.cli("migrate", "-m", "users instead", "--allow-drop")
    assert result.exit_code == 0, result.output
    assert "Enum" not in result.stderr and "deletes data" in result.stderr
