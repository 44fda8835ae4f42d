"""The smaller things a switching user hit (issue 29, item 6): ``flask db entities`` on
Flask-SQLAlchemy models, Flask-Migrate's stock hooks in ``init --replace-env``, no lock
file next to a SQLite database, and the second MariaDB 1553 downgrade pattern of step 4
of docs/coming-from-flask-migrate.md."""

from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path

import pytest
from helpers.migration_apps import USER_ENTITY, AppPackage, ok

from flask_entitydb.migrations._locks.locking import sqlite_lock_file
from flask_entitydb.migrations._scaffold.envfile import customisations

MODELS_INIT = """\
from flask import Flask

from flask_entitydb import EntityDB

db = EntityDB(flask_sqlalchemy_models=True)


def create_app(**config):
    app = Flask(__name__)
    app.config.update(config)
    db.init_app(app)
    return app
"""

MODELS = """\
from . import db


class Post(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(80))
"""


def test_entities_tells_model_users_about_model_modules(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    package.write("__init__.py", MODELS_INIT)
    package.write("models.py", MODELS)
    out = ok(package.cli("entities"))
    assert f"Post   post   {package.name}/models.py  db.Model  2" in out
    assert (
        "Flask-SQLAlchemy models are found through the app's imports and the modules of"
        f" 'ENTITYDB_MODEL_MODULES' (now: '{package.name}.models')"
    ) in out
    assert "ENTITYDB_ENTITY_PACKAGES" not in out
    assert "not discovered" not in out
    document = json.loads(ok(package.cli("entities", "--json")))
    assert document["entities"][0]["model"] is True


def test_entities_without_models_names_model_modules(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    package.write("__init__.py", MODELS_INIT)
    out = ok(package.cli("entities"))
    assert out.startswith("No models found; Flask-SQLAlchemy models are found through")
    assert "(now: none)" in out and "ENTITYDB_ENTITY_PACKAGES" not in out


def test_entity_apps_still_hear_about_entity_packages(sqlite_package: AppPackage) -> None:
    out = ok(sqlite_package.cli("entities"))
    assert out.startswith("No entities found; searched:")
    assert "ENTITYDB_MODEL_MODULES" not in out


def _flask_migrate_env(multidb: bool = False) -> str:
    import flask_migrate

    folder = Path(flask_migrate.__file__).parent / "templates"
    return (folder / ("flask-multidb" if multidb else "flask") / "env.py").read_text()


def _older_style(env: str) -> str:
    """Flask-Migrate's env.py as older releases wrote it: its own
    process_revision_directives passed straight to context.configure()."""
    older = env.replace(
        '    if conf_args.get("process_revision_directives") is None:\n'
        '        conf_args["process_revision_directives"] = process_revision_directives\n',
        "",
    ).replace(
        "            **conf_args",
        "            process_revision_directives=process_revision_directives,\n"
        "            **conf_args",
    )
    assert older != env and "process_revision_directives=process_revision_directives" in older
    return older


def test_stock_process_revision_directives_is_not_a_customisation() -> None:
    assert customisations(_older_style(_flask_migrate_env())) == ()
    assert customisations(_flask_migrate_env(multidb=True)) == ()


def test_a_changed_process_revision_directives_is_listed() -> None:
    changed = _older_style(_flask_migrate_env()).replace(
        "directives[:] = []", "directives[:] = []\n                notify_team(directives)"
    )
    (found,) = customisations(changed)
    assert found.startswith("process_revision_directives=process_revision_directives")


def test_replace_env_on_an_older_stock_env_lists_nothing(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    package.write_entity("user", USER_ENTITY)
    package.migrations.mkdir()
    (package.migrations / "versions").mkdir()
    (package.migrations / "env.py").write_text(_older_style(_flask_migrate_env()))
    result = package.cli("init", "--replace-env")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_no_lock_file_is_left_next_to_a_sqlite_database(
    sqlite_package: AppPackage, tmp_path: Path
) -> None:
    package = sqlite_package
    database = tmp_path / "app.sqlite3"
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "users"))
    ok(package.cli("upgrade"))
    ok(package.cli("downgrade", "base"))
    assert database.exists()
    assert glob.glob(str(tmp_path / "*lock*")) == []
    lock = sqlite_lock_file(str(database), "")
    assert os.path.dirname(lock) == tempfile.gettempdir()
    # the same database by another path has the same lock
    os.symlink(database, tmp_path / "link.sqlite3")
    assert sqlite_lock_file(str(tmp_path / "link.sqlite3"), "") == lock


FK_AND_INDEX = """\
op.create_table(
    "authors",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
)
op.create_table(
    "books",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("author_id", sa.Integer(), nullable=True),
    sa.Column("year", sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(["author_id"], ["authors.id"], name="fk_books_author_id_authors"),
    sa.PrimaryKeyConstraint("id"),
)
"""

COMPOSITE_INDEX_DOWNGRADE = """\
with op.batch_alter_table("books", schema=None) as batch_op:
    batch_op.drop_index("ix_books_author_id_year")
"""

# step 4 of docs/coming-from-flask-migrate.md, as the guide writes it
COMPOSITE_INDEX_DOWNGRADE_FIXED = """\
bind = op.get_bind()
if bind.dialect.name in ("mysql", "mariadb"):
    # the foreign key uses this index: give it one of its own first (error 1553)
    others = [
        index["column_names"][:1]
        for index in sa.inspect(bind).get_indexes("books")
        if index["name"] != "ix_books_author_id_year"
    ]
    if ["author_id"] not in others:
        op.create_index("ix_books_author_id", "books", ["author_id"])
with op.batch_alter_table("books", schema=None) as batch_op:
    batch_op.drop_index("ix_books_author_id_year")
"""


def _index_names(package: AppPackage) -> set[str]:
    import sqlalchemy as sa

    engine = package.engine()
    try:
        return {str(index["name"]) for index in sa.inspect(engine).get_indexes("books")}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", [pytest.param("mysql", marks=pytest.mark.mysql)])
def test_a_composite_index_that_became_a_foreign_keys_index(package: AppPackage) -> None:
    ok(package.cli("init"))
    package.write_revision(
        "c1", None, FK_AND_INDEX, 'op.drop_table("books")\nop.drop_table("authors")'
    )
    package.write_revision(
        "c2",
        "c1",
        'op.create_index("ix_books_author_id_year", "books", ["author_id", "year"])',
        COMPOSITE_INDEX_DOWNGRADE,
    )
    ok(package.cli("upgrade", "c1"))
    before = _index_names(package)
    ok(package.cli("upgrade"))
    # MariaDB dropped the foreign key's own index: the composite one serves it now
    assert _index_names(package) == {"ix_books_author_id_year"}

    refused = package.cli("downgrade", "c1")
    assert refused.exit_code == 1
    assert "1553" in refused.output and "c2" in refused.output
    assert "it was rolled back and the version table is at 'c2'" in refused.output
    assert "repair" not in refused.output
    assert package.version() == {"c2"}

    package.write_revision(
        "c2",
        "c1",
        'op.create_index("ix_books_author_id_year", "books", ["author_id", "year"])',
        COMPOSITE_INDEX_DOWNGRADE_FIXED,
    )
    # the server refused the downgrade's only statement: it changed nothing, the journal
    # knows it, so it runs again without 'flask db repair'
    ok(package.cli("downgrade", "c1"))
    assert before == {"fk_books_author_id_authors"}
    assert _index_names(package) == {"ix_books_author_id"}
    # again: now the foreign key keeps its own index while the composite one exists
    ok(package.cli("upgrade"))
    assert _index_names(package) == {"ix_books_author_id", "ix_books_author_id_year"}
    ok(package.cli("downgrade", "c1"))
    assert _index_names(package) == {"ix_books_author_id"}
    ok(package.cli("downgrade", "base"))
    assert package.version() == set()
