"""What discovery missed, and the drops it would cause: ``*_entity.py`` files outside the
searched packages, classes imported by hand, ``migrate``'s refusal to drop tables, and two
apps sharing one declarative base. On SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.migration_apps import (
    FLASK,
    INIT,
    ORDER_ENTITY,
    TAG_ENTITY,
    USER_ENTITY,
    AppPackage,
    ok,
)

from flask_entitydb import MigrationError, migrations


def _three_tables(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    package.write_entity("order", ORDER_ENTITY)
    package.write_entity("tag", TAG_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "first"))
    ok(package.cli("upgrade"))


def _move_out_of_entities(package: AppPackage, stem: str) -> str:
    """Move ``entities/<stem>_entity.py`` to ``models/``, outside the searched package."""
    source = package.path / "entities" / f"{stem}_entity.py"
    package.write("models/__init__.py", "")
    package.write(f"models/{stem}_entity.py", source.read_text())
    source.unlink()
    return f"{package.name}/models/{stem}_entity.py"


def test_missed_entity_module_is_named_and_never_dropped(package: AppPackage) -> None:
    _three_tables(package)
    order_file = _move_out_of_entities(package, "order")
    tag_file = _move_out_of_entities(package, "tag")
    # places that cannot hold the app's code are not searched
    package.write("node_modules/x/junk_entity.py", "raise RuntimeError")
    package.write(".venv/lib/site/junk_entity.py", "raise RuntimeError")
    before = package.revision_files()

    for extra in ([], ["--allow-drop"]):
        result = package.cli("migrate", *extra)
        assert result.exit_code == 1, result.output
        assert package.revision_files() == before  # nothing written
        error = result.stderr.splitlines()[-1]
        assert error.startswith("Error: Not writing a revision that drops 'orders', 'tags':")
        assert f"entity modules '{order_file}', '{tag_file}'" in error
        assert result.stderr.count(order_file) == 1  # named once, in the error
        assert "ENTITYDB_ENTITY_PACKAGES" in error
        # the setting replaces the default search: the hint says so and names the package
        assert f"its package ('{package.name}.models')" not in error
        assert f"their packages ('{package.name}.models') to 'ENTITYDB_ENTITY_PACKAGES'," in error
        assert "which replaces the default search" in error
        assert "junk_entity" not in result.output
    assert package.tables() >= {"users", "orders", "tags"}

    result = package.cli("check")
    assert result.exit_code == 1
    assert "Entity modules that discovery did not import" in result.output
    assert f"  - '{order_file}'" in result.output and f"  - '{tag_file}'" in result.output

    result = package.cli("entities", "--json")
    data = json.loads(ok(result))
    assert [m["file"] for m in data["undiscovered_modules"]] == [order_file, tag_file]
    assert [m["imported"] for m in data["undiscovered_modules"]] == [False, False]
    assert [e["class"] for e in data["entities"]] == ["User"]
    out = ok(package.cli("entities"))
    assert f"  - '{order_file}'" in out and "junk_entity" not in out

    # listing the package fixes it: no drop, nothing to migrate
    app = package.create_app(
        ENTITYDB_ENTITY_PACKAGES=[f"{package.name}.entities", f"{package.name}.models"]
    )
    assert "No changes" in ok(package.cli("migrate", app=app))
    ok(package.cli("check", app=app))


HAND_IMPORT = INIT.replace(
    "    db.init_app(app)\n",
    "    from .models import order_entity  # imported by hand, outside the searched package\n\n"
    "    db.init_app(app)\n",
)


def test_hand_imported_classes_are_listed_as_not_discovered(package: AppPackage) -> None:
    _three_tables(package)
    order_file = _move_out_of_entities(package, "order")
    package.write("__init__.py", HAND_IMPORT)

    out = ok(package.cli("entities"))
    rows = [line.split() for line in out.splitlines()]
    assert ["Order", "orders", order_file, "not", "discovered", "1"] in rows
    assert "Classes marked 'not discovered' are mapped but were imported by hand" in out
    assert f"  - '{order_file}' (imported by hand)" in out
    data = json.loads(ok(package.cli("entities", "--json")))
    order = next(e for e in data["entities"] if e["class"] == "Order")
    assert order["discovered"] is False and order["source"] == "not discovered"
    assert data["undiscovered_modules"][0]["imported"] is True

    # 'tags' would be dropped; the hand-imported module blocks every drop
    (package.path / "entities" / "tag_entity.py").unlink()
    result = package.cli("migrate", "--allow-drop")
    assert result.exit_code == 1
    assert f"'{order_file}' (imported by hand)" in result.stderr
    assert "drops 'tags'" in result.stderr


def test_drop_table_needs_allow_drop(package: AppPackage) -> None:
    _three_tables(package)
    (package.path / "entities" / "tag_entity.py").unlink()
    (package.path / "entities" / "order_entity.py").unlink()
    before = package.revision_files()

    result = package.cli("migrate")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "Error: Not writing a revision that drops the tables 'orders', 'tags' (deleting their"
        " data): no discovered entity defines them any more. If that is intended, run"
        " 'flask db migrate --allow-drop' (allow_drop=True); otherwise make the entity"
        " modules that define them discoverable ('flask db entities' lists what was found)."
    )
    assert package.revision_files() == before

    app = package.create_app()
    asked: list[list[str]] = []

    def refuse(tables: Sequence[str]) -> bool:
        asked.append(list(tables))
        return False

    with pytest.raises(MigrationError, match="drops the tables 'orders', 'tags'"):
        migrations.migrate(app=app, allow_drop=refuse)
    assert asked == [["'orders'", "'tags'"]]
    assert package.revision_files() == before

    out = ok(package.cli("migrate", "--allow-drop", "-v"))
    assert "! drop table 'orders'  (deletes its data)" in out
    (new,) = set(package.revision_files()) - set(before)
    assert 'op.drop_table("orders")' in new.read_text()
    ok(package.cli("upgrade"))
    assert "orders" not in package.tables()


def test_drop_table_is_confirmed_on_a_terminal(sqlite_package: AppPackage) -> None:
    package = sqlite_package  # the dialogue is the same on every backend
    _three_tables(package)
    (package.path / "entities" / "tag_entity.py").unlink()

    def run_on_terminal(answer: bytes) -> tuple[int, str]:
        master, slave = pty.openpty()
        process = subprocess.Popen(
            [FLASK, "db", "migrate"],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=package.env(),
            cwd=package.src,
        )
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + 60
        while b"Write it?" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        os.write(master, answer)
        out, _ = process.communicate(timeout=60)
        code = process.returncode
        os.close(master)
        assert b"The new revision drops 'tags', deleting their data" in seen, seen
        return code, out.decode()

    before = package.revision_files()
    code, _ = run_on_terminal(b"n\n")
    assert code == 1 and package.revision_files() == before
    code, out = run_on_terminal(b"y\n")
    assert code == 0, out
    (new,) = set(package.revision_files()) - set(before)
    assert 'op.drop_table("tags")' in new.read_text()


def test_migrate_without_drops_still_names_a_missed_module(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    package.write_entity("user", USER_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate"))
    ok(package.cli("upgrade"))
    package.write("models/__init__.py", "")
    package.write("models/comment_entity.py", "")  # new, never migrated: nothing to drop
    result = package.cli("migrate")
    assert result.exit_code == 0, result.output
    assert package.revision_files()[1:] == []  # nothing written
    assert (
        "Warning: discovery did not import the entity module"
        f" '{package.name}/models/comment_entity.py'; its tables are not part of the revision;"
    ) in result.stderr


# -- two apps sharing one base ---------------------------------------------------------------

TWO_APPS = """\
from flask import Flask

from flask_entitydb import EntityDB

from .base import Base

db = EntityDB(base=Base)


def create_app(**config):
    return create_admin(**config)


def create_admin(**config):
    app = Flask(__name__)
    app.config.update(
        ENTITYDB_ENTITY_PACKAGES=[__name__ + ".admin_entities"],
        ENTITYDB_MIGRATIONS_DIR="admin_migrations",
        **config,
    )
    db.init_app(app)
    return app


def create_public(**config):
    app = Flask(__name__)
    app.config.update(
        ENTITYDB_ENTITY_PACKAGES=[__name__ + ".public_entities"],
        ENTITYDB_MIGRATIONS_DIR="public_migrations",
        **config,
    )
    db.init_app(app)
    return app
"""

ENTITY = """\
from sqlalchemy.orm import Mapped, mapped_column

from {package}.base import Base


class {cls}(Base):
    __tablename__ = "{table}"
    id: Mapped[int] = mapped_column(primary_key=True)
"""


def test_two_apps_on_one_base_see_only_their_tables(tmp_path: Path, package: AppPackage) -> None:
    package.write("__init__.py", TWO_APPS)
    for folder, cls, table in [
        ("admin_entities", "Operator", "operators"),
        ("public_entities", "Post", "posts"),
        ("public_entities", "Comment", "comments"),
    ]:
        package.write(f"{folder}/__init__.py", "")
        text = ENTITY.format(package=package.name, cls=cls, table=table)
        package.write(f"{folder}/{table}_entity.py", text)
    admin = package.create_app()
    module = __import__(package.name)
    public_url = f"sqlite:///{tmp_path / 'public.sqlite3'}"
    public: Flask = module.create_public(DB_CONNECTION_STRING=public_url)
    db = module.db
    assert set(db.base.metadata.tables) == {"operators", "posts", "comments"}

    ok(package.cli("init", app=admin))
    out = ok(package.cli("migrate", "-v", app=admin))
    assert "add table 'operators'" in out and "posts" not in out and "comments" not in out
    (revision,) = package.path.joinpath("admin_migrations", "versions").glob("*.py")
    assert "posts" not in revision.read_text()
    ok(package.cli("upgrade", app=admin))
    assert package.tables() == {"alembic_version", "operators"}
    assert "matches the entities" in ok(package.cli("check", app=admin))
    data = json.loads(ok(package.cli("entities", "--json", app=admin)))
    assert [e["class"] for e in data["entities"]] == ["Operator"]
    assert data["undiscovered_modules"] == []  # the other app's modules are not "missed"

    with public.app_context():
        assert set(db.metadata.tables) == {"posts", "comments"}
        db.create_all()
        assert set(sa.inspect(db.engine).get_table_names()) == {"posts", "comments"}
    with admin.app_context():
        assert set(db.metadata.tables) == {"operators"}
    assert package.tables() == {"alembic_version", "operators"}


def test_the_search_covers_a_src_layout_project_and_skips_what_is_not_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_entitydb.discovery._undiscovered import MAX_DEPTH, entity_files, project_roots

    project = tmp_path / "proj"
    name = f"srcpkg_{tmp_path.name[-8:].replace('-', '_')}"
    (project / "src" / name).mkdir(parents=True)
    (project / "src" / name / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    wanted = [
        project / "scripts" / "old_entity.py",
        project / "src" / name / "models" / "comment_entity.py",
    ]
    skipped = [
        project / ".venv" / "lib" / "a_entity.py",
        project / "env2" / "lib" / "b_entity.py",  # a venv: it has a pyvenv.cfg
        project / "node_modules" / "c_entity.py",
        project / "build" / "lib" / "d_entity.py",
        project / "x.egg-info" / "e_entity.py",
        project.joinpath(*["deep"] * (MAX_DEPTH + 1), "f_entity.py"),
    ]
    for path in wanted + skipped:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    (project / "env2" / "pyvenv.cfg").write_text("home = /usr\n")
    monkeypatch.syspath_prepend(str(project / "src"))
    __import__(name)
    try:
        assert project_roots(Flask(name)) == [str(project)]
        assert entity_files(str(project)) == sorted(str(path) for path in wanted)
    finally:
        del sys.modules[name]
