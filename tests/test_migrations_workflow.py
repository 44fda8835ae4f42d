"""``flask db`` end to end through ``app.test_cli_runner()``, on SQLite, MariaDB and
PostgreSQL: the workflow, autogenerate's defaults, and what each command prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.migration_apps import (
    USER_ENTITY,
    USER_ENTITY_WITH_EMAIL,
    AppPackage,
    ok,
    without_database_line,
)


def test_init_migrate_upgrade_check_downgrade(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)

    out = ok(package.cli("init"))
    assert "Created the migrations folder" in out
    for name in ("alembic.ini", "env.py", "script.py.mako", "README", "versions"):
        assert (package.migrations / name).exists(), name

    result = package.cli("current")
    assert result.exit_code == 0 and result.stdout == ""  # as Flask-Migrate: nothing
    assert (
        without_database_line(result.stderr)
        == "The database has no revision applied ('flask db upgrade' applies them).\n"
    )

    out = ok(package.cli("migrate", "-m", "create users"))
    # Alembic's log line, where Flask-Migrate prints it
    assert "Detected added table 'users'" in out
    assert f"Generating {package.versions}" in out and out.endswith(" ...  done\n")
    (first,) = package.revision_files()
    text = first.read_text()
    assert "op.create_table" in text
    assert "please adjust" not in text and "end Alembic commands" not in text
    assert 'op.create_table(\n        "users",' in text  # formatted by ruff (post-write hook)

    out = ok(package.cli("upgrade"))
    first_id = first.name.split("_")[0]
    assert f"Applied {first_id}: create users (" in out
    assert package.tables() == {"alembic_version", "users"}
    assert package.version() == {first_id}

    package.write_entity("user", USER_ENTITY_WITH_EMAIL)
    result = package.cli("check")
    assert result.exit_code == 1
    assert "add column 'users.email'" in result.output
    assert "flask db migrate" in result.output

    out = ok(package.cli("migrate", "-m", "add email", "-v"))
    assert "add column 'users.email'" in out
    second = next(p for p in package.revision_files() if p != first)
    second_id = second.name.split("_")[0]

    result = package.cli("check")
    assert result.exit_code == 1
    assert f"{second_id}: add email" in result.output
    assert "not applied" in result.output

    out = ok(package.cli("upgrade"))
    assert f"Applied {second_id}: add email (" in out
    assert f"Applied {first_id}" not in out

    out = ok(package.cli("check"))
    assert "matches the entities" in out

    out = ok(package.cli("current"))
    assert out == f"{second_id} (head)\n"  # as Flask-Migrate prints it

    out = ok(package.cli("downgrade", "base"))
    assert out.index(f"Reverted {second_id}") < out.index(f"Reverted {first_id}")
    assert package.tables() == {"alembic_version"}
    assert package.version() == set()

    out = ok(package.cli("upgrade"))
    assert package.tables() == {"alembic_version", "users"}
    ok(package.cli("check"))


def test_migrate_without_changes_writes_nothing(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate"))
    ok(package.cli("upgrade"))
    before = package.revision_files()

    out = ok(package.cli("migrate", "-m", "nothing"))
    assert "No changes" in out
    assert package.revision_files() == before

    out = ok(package.cli("migrate", "-m", "on purpose", "--allow-empty"))
    new = set(package.revision_files()) - set(before)
    assert len(new) == 1
    assert "on purpose" in new.pop().read_text()


def test_migrate_names_the_revision_after_the_changes(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate"))
    (path,) = package.revision_files()
    assert path.name.endswith("_add_table_users.py")
    assert '"""add table users' in path.read_text()


def test_migrate_refuses_while_the_database_is_behind(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate"))
    before = package.revision_files()
    package.write_entity("user", USER_ENTITY_WITH_EMAIL)

    result = package.cli("migrate", "-m", "too early")
    assert result.exit_code == 1
    assert without_database_line(result.stderr).count("\n") == 1
    assert "run 'flask db upgrade' first" in result.stderr
    assert "Traceback" not in result.output
    assert package.revision_files() == before


def test_migrate_refuses_without_entities(package: AppPackage) -> None:
    with pytest.warns(UserWarning):
        app = package.create_app()
    ok(package.cli("init", app=app))

    result = package.cli("migrate", app=app)
    assert result.exit_code == 1
    assert "No entities were found" in result.stderr
    assert f"'{package.name}.entities'" in result.stderr
    assert package.revision_files() == []


def test_drops_are_called_out(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY_WITH_EMAIL)
    package.write_entity(
        "tag",
        'class Tag(Base):\n    __tablename__ = "tags"\n'
        "    id: Mapped[int] = mapped_column(primary_key=True)\n",
    )
    ok(package.cli("init"))
    ok(package.cli("migrate"))
    ok(package.cli("upgrade"))

    package.write_entity("user", USER_ENTITY)
    (package.path / "entities" / "tag_entity.py").unlink()
    before = set(package.revision_files())
    result = package.cli("migrate", "-m", "drop things", "-v", "--allow-drop")
    assert result.exit_code == 0, result.output
    assert "! drop column 'users.email'  (deletes its data)" in result.stdout
    assert "! drop table 'tags'  (deletes its data)" in result.stdout
    (path,) = set(package.revision_files()) - before
    assert without_database_line(result.stderr) == (
        "Warning: this revision deletes data (drop table 'tags', drop column 'users.email');"
        f" check the file '{path}' before 'flask db upgrade'.\n"
        "Warning: the new revision has hazards for a running app (above); apply the recipes,"
        " or mark reviewed ones '# entitydb: allow <rule>'.\n"
    )
    # flask db lint: the previous release still maps both (expand/contract)
    assert ": drop-column: op.drop_column('users', 'email')" in result.stdout
    assert ": drop-table: op.drop_table('tags', ...)" in result.stdout


def test_exclude_tables_keeps_other_applications_tables(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    engine = package.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE legacy_orders (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql("CREATE TABLE other_thing (id INTEGER PRIMARY KEY)")
    engine.dispose()
    app = package.create_app(ENTITYDB_EXCLUDE_TABLES=["legacy_*", "other_thing"])
    ok(package.cli("init", app=app))
    out = ok(package.cli("migrate", app=app))
    assert "legacy_orders" not in out and "other_thing" not in out
    ok(package.cli("upgrade", app=app))
    ok(package.cli("check", app=app))
    assert {"legacy_orders", "other_thing"} <= package.tables()

    # without the exclusion, check sees the foreign tables as tables to drop
    result = package.cli("check")
    assert result.exit_code == 1
    assert "drop table 'legacy_orders'" in result.output


def test_offline_sql(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    package.write_revision(
        "r1",
        None,
        "op.create_table('notes', sa.Column('id', sa.Integer, primary_key=True))",
        "op.drop_table('notes')",
        message="create notes",
    )

    result = package.cli("upgrade", "--sql")
    out = ok(result)
    assert "CREATE TABLE notes" in out
    assert "INSERT INTO alembic_version" in out and "'r1'" in out
    assert "Applied" not in out
    assert package.tables() == set()  # nothing ran

    out = ok(package.cli("downgrade", "--sql", "r1:base"))
    assert "DROP TABLE notes" in out
    assert package.tables() == set()

    result = package.cli("downgrade", "--sql", "base")
    assert result.exit_code == 1
    assert "'head:base'" in result.stderr


def test_merge_with_one_head_writes_nothing(sqlite_package: AppPackage) -> None:
    """Before, 'flask db merge' on one head wrote an empty revision after it."""
    package = sqlite_package
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    package.write_revision("a1", None, "pass", message="root")
    out = without_database_line(ok(package.cli("merge", "-m", "join")))
    assert out == "Nothing to merge: the migrations have one head ('a1'); nothing written.\n"
    assert [path.name for path in package.revision_files()] == ["a1_rev.py"]


def test_history_heads_show_branches_merge_stamp(
    package: AppPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    package.write_revision("a1", None, "pass", message="root")
    package.write_revision("b1", "a1", "pass", message="left")
    package.write_revision("c1", "a1", "pass", message="right")

    out = ok(package.cli("heads"))
    assert "b1 (head)" in out and "c1 (head)" in out
    out = ok(package.cli("branches"))
    assert "a1 (branchpoint)" in out and "-> b1" in out and "-> c1" in out
    result = package.cli("upgrade", "head")
    assert result.exit_code == 1
    assert "Multiple head revisions" in result.stderr
    assert without_database_line(result.stderr).count("\n") == 1

    out = ok(package.cli("merge", "-m", "join"))
    merge_id = out.split("(revision ")[1].split(")")[0]
    out = ok(package.cli("heads"))
    assert out.splitlines() == [f"{merge_id} (head)"]

    out = ok(package.cli("history"))
    lines = out.splitlines()
    assert lines[0].startswith(f"b1, c1 -> {merge_id} (head)")
    assert lines[-1] == "<base> -> a1 (branchpoint), root"

    out = ok(package.cli("show", "b1"))
    assert "Rev: b1" in out and "Parent: a1" in out

    editor = package.write("editor.sh", '#!/bin/sh\necho "# edited" >> "$1"\n')
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    ok(package.cli("edit", "b1"))
    assert (package.versions / "b1_rev.py").read_text().endswith("# edited\n")

    out = ok(package.cli("stamp", "b1"))
    assert "Stamped b1: left" in out
    assert package.version() == {"b1"}
    out = ok(package.cli("history", "-i"))
    assert "a1 -> b1 (current), left" in out  # where Alembic puts it
    out = ok(package.cli("show", "current"))
    assert "Rev: b1" in out

    ok(package.cli("stamp", "--purge", "a1"))
    assert package.version() == {"a1"}
    out = ok(package.cli("upgrade"))
    assert "Applied b1: left" in out and "Applied c1: right" in out
    assert f"Applied {merge_id}: join" in out
    assert package.version() == {merge_id}
    out = ok(package.cli("upgrade"))
    assert "Nothing to do" in out


def test_directory_option_on_group_and_commands(package: AppPackage, tmp_path: Path) -> None:
    package.write_entity("user", USER_ENTITY)
    folder = tmp_path / "elsewhere"
    out = ok(package.cli("-d", str(folder), "init"))
    assert f"'{folder}'" in out
    assert f"next, run 'flask db -d {folder} migrate -m" in out
    assert f"and 'flask db -d {folder} upgrade'" in out
    assert (folder / "env.py").exists()
    assert not package.migrations.exists()

    ok(package.cli("migrate", "-d", str(folder), "-m", "first"))
    ok(package.cli("-d", str(folder), "upgrade"))
    assert "users" in package.tables()
    out = ok(package.cli("current", "--directory", str(folder)))
    assert "(head)" in out

    result = package.cli("upgrade")
    assert result.exit_code == 1
    assert f"no migrations folder at '{package.migrations}'" in result.stderr
    assert "flask db init" in result.stderr


def test_migrations_dir_config(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    app = package.create_app(ENTITYDB_MIGRATIONS_DIR="db/migrations")
    out = ok(package.cli("init", app=app))
    assert (package.path / "db" / "migrations" / "env.py").exists()
    assert str(package.path / "db" / "migrations") in out
    assert "next, run 'flask db migrate -m" in out

    # paths are shown normalised
    app = package.create_app(ENTITYDB_MIGRATIONS_DIR="../outside/migrations")
    out = ok(package.cli("init", app=app))
    assert f"'{package.src / 'outside' / 'migrations'}'" in out and "/../" not in out
    out = ok(package.cli("init", "--replace-env", app=app))
    assert f"'{package.src / 'outside' / 'migrations' / 'env.py'}'" in out


def test_revision_options(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    out = ok(
        package.cli(
            "revision", "-m", "by hand", "--rev-id", "hand1", "--branch-label", "core", "-v"
        )
    )
    assert "(revision hand1)" in out
    text = (package.versions / "hand1_by_hand.py").read_text()
    assert "branch_labels: str | Sequence[str] | None = ('core',)" in text.replace('"', "'")
    assert "def upgrade() -> None:\n    pass" in text

    ok(package.cli("revision", "-m", "side", "--rev-id", "side1", "--head", "base", "--splice"))
    ok(
        package.cli(
            "revision",
            "-m",
            "needs",
            "--rev-id",
            "dep1",
            "--head",
            "core@head",
            "--depends-on",
            "side1",
        )
    )
    out = ok(package.cli("show", "dep1"))
    assert "Parent: hand1" in out and "Also depends on: side1" in out
    assert {i for i in ok(package.cli("heads")).split() if i in {"dep1", "side1"}} == {
        "dep1",
        "side1",
    }

    # --autogenerate with nothing to do writes nothing, unless --allow-empty
    ok(package.cli("upgrade", "heads"))
    result = package.cli("revision", "--autogenerate", "-m", "users")
    assert result.exit_code == 1 and "flask db merge" in result.stderr
    out = ok(package.cli("revision", "--autogenerate", "-m", "users", "--head", "core@head"))
    assert "Detected added table 'users'" in out
    ok(package.cli("upgrade", "heads"))
    before = package.revision_files()
    auto = ("revision", "--autogenerate", "-m", "none", "--head", "core@head")
    assert "No changes" in ok(package.cli(*auto))
    assert package.revision_files() == before
    ok(package.cli(*auto, "--allow-empty"))
    assert len(package.revision_files()) == len(before) + 1


def test_env_py_options_reach_alembic(package: AppPackage) -> None:
    """run_migrations(**options) in env.py is the escape hatch for context.configure()."""
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    env = package.migrations / "env.py"
    env.write_text(
        env.read_text().replace(
            "run_migrations()",
            "run_migrations(\n"
            "    version_table='acme_versions',\n"
            "    include_object=lambda obj, name, *args: name != 'skip_me',\n"
            ")",
        )
    )
    engine = package.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE skip_me (id INTEGER PRIMARY KEY)")
    engine.dispose()

    out = ok(package.cli("migrate", "-m", "users"))
    assert "skip_me" not in out
    ok(package.cli("upgrade"))
    assert {"acme_versions", "users", "skip_me"} <= package.tables()
    assert "alembic_version" not in package.tables()
    assert "(head)" in ok(package.cli("current"))
    assert "matches the entities" in ok(package.cli("check"))
