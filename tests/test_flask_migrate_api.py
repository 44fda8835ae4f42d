"""Flask-Migrate's Python API as it is (issue 29, item 3): every function Flask-Migrate
has takes the same arguments in ``flask_entitydb.migrations``, positional (the folder
first) or by keyword, and flask-entitydb's own keyword style keeps working."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import flask_migrate
import pytest
from helpers.migration_apps import USER_ENTITY, AppPackage

from flask_entitydb import migrations
from flask_entitydb.errors import MigrationError

FLASK_MIGRATE_FUNCTIONS = [
    "init",
    "revision",
    "migrate",
    "edit",
    "merge",
    "upgrade",
    "downgrade",
    "show",
    "history",
    "heads",
    "branches",
    "current",
    "stamp",
    "check",
    "list_templates",
]


@pytest.mark.parametrize("name", FLASK_MIGRATE_FUNCTIONS)
def test_every_function_takes_flask_migrates_arguments_in_its_order(name: str) -> None:
    theirs = inspect.signature(getattr(flask_migrate, name)).parameters
    ours = inspect.signature(getattr(migrations, name)).parameters
    positional = [
        p.name for p in ours.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert positional == list(theirs), name


MARKS = """\
from alembic import context

marks = sa.table("marks", sa.column("value", sa.String))
value = context.get_x_argument(as_dictionary=True).get("mark", "none")
op.create_table("marks", sa.Column("value", sa.String(40)))
op.bulk_insert(marks, [{"value": value}])
"""


def _package(package: AppPackage) -> tuple[str, str]:
    """The app with a users entity and no folder yet; (folder, folder relative to the
    working directory)."""
    package.write_entity("user", USER_ENTITY)
    return str(package.migrations), os.path.relpath(package.migrations)


def test_flask_migrate_call_style(
    sqlite_package: AppPackage,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    package = sqlite_package
    monkeypatch.chdir(package.src)
    folder, relative = _package(package)
    assert not os.path.isabs(relative)
    monkeypatch.setenv("EDITOR", "true")
    app = package.create_app(ENTITYDB_EXCLUDE_TABLES=["marks"])
    with app.app_context():
        # directory first, relative to the working directory, as in Flask-Migrate
        assert migrations.init(relative) == folder
        users = migrations.migrate(relative, "users", False, "head", False, None, None, "r1")
        assert users is not None and users.revision == "r1"
        assert users.changes == ("add table 'users'",)
        empty = migrations.revision(
            relative, "empty", False, False, "head", False, None, None, "r2"
        )
        assert empty is not None and empty.revision == "r2"
        package.write_revision("r3", "r2", MARKS, 'op.drop_table("marks")')

        printed = migrations.upgrade(relative, "r1", True)
        assert printed == [] and "CREATE TABLE users" in capsys.readouterr().out
        assert package.version() == set()
        applied = migrations.upgrade(relative, "head", False, None, "mark=positional")
        assert [a.revision for a in applied] == ["r1", "r2", "r3"]
        assert package.scalar("SELECT value FROM marks") == "positional"

        assert [i.revision for i in migrations.current(relative, True)] == ["r3"]
        assert [i.revision for i in migrations.heads(relative, False, False)] == ["r3"]
        history = migrations.history(relative, "r1:r3", False, True)
        assert [(i.revision, i.is_current) for i in history] == [
            ("r3", True),
            ("r2", False),
            ("r1", False),
        ]
        assert [i.revision for i in migrations.show(relative, "r2")] == ["r2"]
        assert migrations.check(relative).ok
        migrations.edit(relative, "r2")  # $EDITOR is 'true'

        reverted = migrations.downgrade(relative, "r1")
        assert [r.revision for r in reverted] == ["r3", "r2"]
        migrations.downgrade(relative, "r3:r1", True)  # as SQL: nothing reverted
        assert "DROP TABLE marks" in capsys.readouterr().out
        assert package.version() == {"r1"}
        stamped = migrations.stamp(relative, "r3", False, None, True)
        assert [s.revision for s in stamped] == ["r3"] and package.version() == {"r3"}

        # a second head, then Flask-Migrate's merge(directory, revisions, message)
        migrations.revision(relative, "side", False, False, "r1", True, None, None, "s1")
        assert [b.revision for b in migrations.branches(relative, False)] == ["r1"]
        merged = migrations.merge(relative, "heads", "join", None, "m1")
        assert merged.revision == "m1"
        assert [i.revision for i in migrations.heads(relative)] == ["m1"]


def test_our_keyword_style_still_works(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    folder, _ = _package(package)
    app = package.create_app()
    assert migrations.init(directory=folder, app=app) == folder
    new = migrations.migrate(message="users", rev_id="k1", directory=folder, app=app)
    assert new is not None and new.revision == "k1"
    package.write_revision("k2", "k1", MARKS, 'op.drop_table("marks")')
    applied = migrations.upgrade(revision="head", x_args=["mark=keyword"], app=app)
    assert [a.revision for a in applied] == ["k1", "k2"]
    assert package.scalar("SELECT value FROM marks") == "keyword"
    assert [i.revision for i in migrations.show(revision="k1", app=app)] == ["k1"]
    assert len(migrations.history(rev_range="base:head", app=app)) == 2
    assert [r.revision for r in migrations.downgrade(revision="base", app=app)] == ["k2", "k1"]
    assert [s.revision for s in migrations.stamp(revisions="k1", app=app)] == ["k1"]
    assert [a.revision for a in migrations.upgrade(x_arg="mark=x_arg", app=app)] == ["k2"]
    assert package.scalar("SELECT value FROM marks") == "x_arg"


def test_a_revision_where_the_folder_goes_says_what_to_write(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    folder, _ = _package(package)
    app = package.create_app()
    migrations.init(app=app)
    with app.app_context():
        with pytest.raises(MigrationError) as error:
            migrations.upgrade("head")
        message = str(error.value)
        assert "'head' looks like a revision" in message
        assert "write revision='head'" in message
        assert f"the app's migrations folder is '{folder}'" in message
        with pytest.raises(MigrationError, match="revision='base'"):
            migrations.downgrade("base")


def test_a_folder_left_where_flask_migrate_kept_it_is_named(
    sqlite_package: AppPackage, tmp_path: Path
) -> None:
    """An app that calls ``upgrade(migrations_path)`` after the folder moved into the
    package is told where the folder is now."""
    package = sqlite_package
    folder, _ = _package(package)
    app = package.create_app()
    migrations.init(app=app)
    old = tmp_path / "migrations"
    with app.app_context(), pytest.raises(MigrationError) as error:
        migrations.upgrade(str(old))
    message = str(error.value)
    assert message.startswith(f"There is no migrations folder at '{old}'")
    assert f"the app's migrations folder is '{folder}'" in message
    assert "looks like a revision" not in message


def test_what_has_no_equivalent_is_refused(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    _package(package)
    app = package.create_app()
    with pytest.raises(MigrationError, match="--bind KEY"):
        migrations.init(None, True, app=app)
    assert not package.migrations.exists()
    migrations.init(app=app)
    with pytest.raises(MigrationError, match="cannot be written as SQL"):
        migrations.migrate(None, "users", True, app=app)
    with pytest.raises(TypeError, match="'revision' or 'revisions'"):
        migrations.stamp(revision="base", revisions="head", app=app)
