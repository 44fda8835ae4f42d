"""Entity discovery: entry points, configured packages and the default ``entities``
subpackage; errors and warnings; ``flask db entities``.

Every test builds real throwaway packages (each with a unique name and its own declarative
base) under ``tmp_path`` and puts that folder on ``sys.path``; entry points are real
``.dist-info`` folders written there, read by :mod:`importlib.metadata`.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers.migration_apps import without_database_line

from flask_entitydb import EntityDB, EntityDiscoveryError, EntityDiscoveryWarning

PREFIX = "edbt_"
NO_ENTRY_POINTS: list[str] = []  # ENTITYDB_ENTRY_POINTS for tests about other sources


class Src:
    """A folder on ``sys.path`` to write throwaway packages and distributions into."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def package(self, files: dict[str, str]) -> str:
        """Write a new package with a unique name; ``files`` maps paths inside it to
        their source, ``{pkg}`` standing for the package name. The package gets a
        ``base.py`` with its own declarative base ``Base`` and a ``log`` of imports."""
        name = f"{PREFIX}{uuid.uuid4().hex[:10]}"
        files = {
            "__init__.py": "log = []\n",
            "base.py": BASE_MODULE,
            **files,
        }
        for path, source in files.items():
            target = self.root / name / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(source).replace("{pkg}", name))
        importlib.invalidate_caches()
        return name

    def distribution(self, entries: dict[str, str]) -> str:
        """Install a distribution (a ``.dist-info`` folder) with these
        ``flask_entitydb.entities`` entry points; return its name."""
        dist = f"edbt-dist-{uuid.uuid4().hex[:8]}"
        info = self.root / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = "".join(f"{label} = {value}\n" for label, value in entries.items())
        (info / "entry_points.txt").write_text(f"[flask_entitydb.entities]\n{lines}")
        importlib.invalidate_caches()
        return dist


BASE_MODULE = """\
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from flask_entitydb import NAMING_CONVENTION


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OtherBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""


def entity(cls: str, table: str, *, base: str = "Base", columns: int = 1) -> str:
    """Source of an entity module defining ``cls`` with ``columns`` columns; it records
    its import in the package's ``log``."""
    extra = "".join(f"    c{i}: Mapped[str | None]\n" for i in range(1, columns))
    return (
        "from sqlalchemy.orm import Mapped, mapped_column\n"
        "import {pkg}\n"
        "from {pkg}.base import Base, OtherBase\n\n"
        "{pkg}.log.append(__name__)\n\n\n"
        f"class {cls}({base}):\n"
        f"    __tablename__ = {table!r}\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        f"{extra}"
    )


MUST_NOT_IMPORT = "raise RuntimeError('this module must not be imported')\n"


@pytest.fixture
def src(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Src]:
    root = tmp_path / "src"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield Src(root)
    for name in [name for name in sys.modules if name.startswith(PREFIX)]:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def new_app(make_app: Callable[..., Flask]) -> Callable[..., tuple[Flask, EntityDB]]:
    """An app named ``import_name`` set up with EntityDB on the package's own base."""

    def factory(pkg: str, import_name: str = "edbt_app", **config: Any) -> tuple[Flask, EntityDB]:
        config.setdefault("DB_CONNECTION_STRING", "sqlite://")
        app = make_app(import_name, **config)
        db = EntityDB(app, base=importlib.import_module(f"{pkg}.base").Base)
        return app, db

    return factory


def log_of(pkg: str) -> list[str]:
    return [name.removeprefix(pkg + ".") for name in importlib.import_module(pkg).log]


# -- where entities come from ---------------------------------------------------------------


def test_nested_entity_modules_imported_in_sorted_order(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/z_entity.py": entity("Zed", "zeds"),
            "entities/a_entity.py": entity("Alpha", "alphas", columns=3),
            "entities/sub/__init__.py": "",
            "entities/sub/b_entity.py": entity("Beta", "betas"),
            "entities/sub/deeper/__init__.py": "",
            "entities/sub/deeper/c_entity.py": entity("Gamma", "gammas"),
            "entities/ns/d_entity.py": entity("Delta", "deltas"),  # no __init__.py
            # never imported: not entity modules, or a package without any
            "entities/helpers.py": MUST_NOT_IMPORT,
            "entities/entity.py": MUST_NOT_IMPORT,
            "entities/user_entity_test.py": MUST_NOT_IMPORT,
            "entities/sub/notes.py": MUST_NOT_IMPORT,
            "entities/empty/__init__.py": MUST_NOT_IMPORT,
            "entities/empty/readme.py": MUST_NOT_IMPORT,
        }
    )
    app, db = new_app(pkg, ENTITYDB_ENTITY_PACKAGES=[f"{pkg}.entities"])

    expected = [
        "entities.a_entity",
        "entities.ns.d_entity",
        "entities.sub.b_entity",
        "entities.sub.deeper.c_entity",
        "entities.z_entity",
    ]
    assert log_of(pkg) == expected
    assert not [m for m in sys.modules if m.startswith(pkg) and m.endswith(("helpers", "notes"))]
    assert f"{pkg}.entities.empty" not in sys.modules
    with app.app_context():
        assert list(db.entities) == ["Alpha", "Delta", "Beta", "Gamma", "Zed"]
        assert db.entities["Alpha"].__module__ == f"{pkg}.entities.a_entity"
        with pytest.raises(TypeError):
            db.entities["Other"] = db.entities["Alpha"]  # type: ignore[index]
        db.create_all()
        assert sorted(sa.inspect(db.engine).get_table_names()) == [
            "alphas",
            "betas",
            "deltas",
            "gammas",
            "zeds",
        ]


def test_config_packages_and_single_modules(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "models/__init__.py": "",
            "models/user_entity.py": entity("User", "users"),
            "more/__init__.py": "",
            "more/tag_entity.py": entity("Tag", "tags"),
            "audit.py": entity("AuditLog", "audit_log"),
            # the default package is not searched when the config names packages
            "entities/__init__.py": "",
            "entities/stray_entity.py": MUST_NOT_IMPORT,
        }
    )
    app, _ = new_app(
        pkg,
        import_name=pkg,
        ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS,
        ENTITYDB_ENTITY_PACKAGES=[f"{pkg}.more", f"{pkg}.models", f"{pkg}.audit"],
    )
    discovery = app.extensions["entitydb"].discovery
    assert [(d.name, d.source) for d in discovery.details] == [
        ("Tag", "config"),
        ("User", "config"),
        ("AuditLog", "config"),
    ]
    assert f"'{pkg}.models' (ENTITYDB_ENTITY_PACKAGES)" in discovery.searched


def test_config_packages_accept_a_comma_separated_string(src: Src, new_app: Any) -> None:
    pkg = src.package({"one_entity.py": entity("One", "ones"), "two.py": entity("Two", "twos")})
    app, _ = new_app(
        pkg,
        ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS,
        ENTITYDB_ENTITY_PACKAGES=f"{pkg}.one_entity, {pkg}.two",
    )
    assert list(app.extensions["entitydb"].discovery.entities) == ["One", "Two"]


@pytest.mark.parametrize("app_module", [None, "app"], ids=["package", "module-in-package"])
def test_default_is_the_entities_subpackage_of_the_app(
    src: Src, new_app: Any, app_module: str | None
) -> None:
    pkg = src.package(
        {
            "app.py": "",
            "entities/__init__.py": "",
            "entities/book_entity.py": entity("Book", "books"),
            "models/__init__.py": "",
            "models/other_entity.py": MUST_NOT_IMPORT,
        }
    )
    import_name = f"{pkg}.{app_module}" if app_module else pkg
    app, _ = new_app(pkg, import_name=import_name, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    discovery = app.extensions["entitydb"].discovery
    assert [(d.name, d.source, d.file) for d in discovery.details] == [
        ("Book", "default", f"{pkg}/entities/book_entity.py")
    ]
    assert f"'{pkg}.entities' (default)" in discovery.searched


def test_entry_points_name_packages_and_single_modules(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "persistence/__init__.py": "",
            "persistence/entities/__init__.py": "",
            "persistence/entities/user_entity.py": entity("User", "users", columns=2),
            "persistence/entities/helpers.py": MUST_NOT_IMPORT,
            "audit/__init__.py": "",
            "audit/models.py": entity("AuditLog", "audit_log"),
        }
    )
    dist = src.distribution({"acme": f"{pkg}.persistence.entities", "audit": f"{pkg}.audit.models"})
    app, _ = new_app(pkg, ENTITYDB_ENTRY_POINTS=["acme", "audit"])
    discovery = app.extensions["entitydb"].discovery
    assert [(d.name, d.table, d.file, d.source, d.columns) for d in discovery.details] == [
        ("User", "users", f"{pkg}/persistence/entities/user_entity.py", "acme", 2),
        ("AuditLog", "audit_log", f"{pkg}/audit/models.py", "audit", 1),
    ]
    assert f"'{pkg}.audit.models' (entry point 'audit' of '{dist}')" in discovery.searched


def test_entry_points_default_to_all_installed(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "a/__init__.py": "",
            "a/one_entity.py": entity("One", "ones"),
            "b/__init__.py": "",
            "b/two_entity.py": entity("Two", "twos"),
        }
    )
    src.distribution({"edbt-first": f"{pkg}.a"})
    src.distribution({"edbt-second": f"{pkg}.b"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # other installed distributions may ship entities on another base: they warn
        app, _ = new_app(pkg)
    assert not [w for w in caught if pkg in str(w.message)]
    details = app.extensions["entitydb"].discovery.details
    assert [(d.name, d.source) for d in details if d.module.startswith(pkg)] == [
        ("One", "edbt-first"),
        ("Two", "edbt-second"),
    ]


def test_entry_points_config_restricts_labels(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "a/__init__.py": "",
            "a/one_entity.py": entity("One", "ones"),
            "b/__init__.py": "",
            "b/two_entity.py": MUST_NOT_IMPORT,
        }
    )
    src.distribution({"edbt-wanted": f"{pkg}.a", "edbt-unwanted": f"{pkg}.b"})
    app, _ = new_app(pkg, ENTITYDB_ENTRY_POINTS=["edbt-wanted"])
    assert list(app.extensions["entitydb"].discovery.entities) == ["One"]


def test_unknown_entry_point_label_is_an_error(src: Src, new_app: Any) -> None:
    pkg = src.package({})
    with pytest.raises(EntityDiscoveryError) as caught:
        new_app(pkg, ENTITYDB_ENTRY_POINTS=["edbt-nonexistent-label"])
    message = str(caught.value)
    assert "'ENTITYDB_ENTRY_POINTS'" in message
    assert "'edbt-nonexistent-label'" in message


def test_entities_of_other_bases_are_not_included(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/mixed_entity.py": entity("Mine", "mine")
            + "\n\nclass NotMine(OtherBase):\n    __tablename__ = 'not_mine'\n"
            + "    id: Mapped[int] = mapped_column(primary_key=True)\n",
        }
    )
    app, _ = new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    assert list(app.extensions["entitydb"].discovery.entities) == ["Mine"]


def test_two_apps_share_one_import(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/user_entity.py": entity("User", "users"),
            "entities/role_entity.py": entity("Role", "roles"),
        }
    )
    first, db_first = new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    second, db_second = new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    assert log_of(pkg) == ["entities.role_entity", "entities.user_entity"]  # once each
    with first.app_context():
        entities_first = dict(db_first.entities)
    with second.app_context():
        assert dict(db_second.entities) == entities_first
        db_second.create_all()
        assert sorted(sa.inspect(db_second.engine).get_table_names()) == ["roles", "users"]


def test_shell_context_has_entities_and_db(src: Src, new_app: Any) -> None:
    pkg = src.package({"entities/__init__.py": "", "entities/n_entity.py": entity("Note", "n")})
    app, db = new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    with app.app_context():
        context = app.make_shell_context()
    assert context["db"] is db
    assert context["Note"].__tablename__ == "n"


# -- errors and warnings ----------------------------------------------------------------


def _discovery_error(new_app: Any, pkg: str, **config: Any) -> EntityDiscoveryError:
    config.setdefault("ENTITYDB_ENTRY_POINTS", NO_ENTRY_POINTS)
    config.setdefault("import_name", pkg)
    with pytest.raises(EntityDiscoveryError) as caught:
        new_app(pkg, **config)
    return caught.value


def test_syntax_error_names_file_and_line(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/broken_entity.py": "import sqlalchemy\n\nclass Broken(:\n    pass\n",
        }
    )
    error = _discovery_error(new_app, pkg)
    assert str(error).startswith(
        f"Cannot import entity module '{pkg}/entities/broken_entity.py' (line 3): SyntaxError:"
    )
    assert isinstance(error.__cause__, SyntaxError)


def test_missing_import_names_file_and_original_error(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/ok_entity.py": entity("Fine", "fine"),
            "entities/user_entity.py": "import os\nimport edbt_no_such_module_anywhere\n",
        }
    )
    error = _discovery_error(new_app, pkg)
    assert str(error) == (
        f"Cannot import entity module '{pkg}/entities/user_entity.py' (line 2):"
        " ModuleNotFoundError: No module named 'edbt_no_such_module_anywhere'."
    )
    assert isinstance(error.__cause__, ModuleNotFoundError)


def test_failing_helper_and_subpackage_are_named(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/util.py": "x = 1\nraise ValueError('bad helper')\n",
            "entities/user_entity.py": "from . import util\n",
        }
    )
    error = _discovery_error(new_app, pkg)
    assert str(error) == (
        f"Cannot import entity module '{pkg}/entities/user_entity.py':"
        f" '{pkg}/entities/util.py' (line 2): ValueError: bad helper."
    )

    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/sub/__init__.py": "\n1 / 0\n",
            "entities/sub/user_entity.py": entity("User", "users"),
        }
    )
    error = _discovery_error(new_app, pkg)
    assert str(error) == (
        f"Cannot import module '{pkg}/entities/sub/__init__.py' (line 2):"
        " ZeroDivisionError: division by zero."
    )


def test_missing_configured_package_names_config_key(src: Src, new_app: Any) -> None:
    pkg = src.package({})
    for missing in (f"{pkg}.nothing_here", "edbt_no_such_top_level.entities"):
        error = _discovery_error(new_app, pkg, ENTITYDB_ENTITY_PACKAGES=[missing])
        assert str(error).startswith(
            f"'ENTITYDB_ENTITY_PACKAGES' names '{missing}', which cannot be found;"
        )


def test_missing_entry_point_target_names_distribution(src: Src, new_app: Any) -> None:
    pkg = src.package({})
    dist = src.distribution({"edbt-ghost": f"{pkg}.vanished"})
    error = _discovery_error(new_app, pkg, ENTITYDB_ENTRY_POINTS=["edbt-ghost"])
    assert str(error).startswith(
        f"Entry point 'edbt-ghost' of distribution '{dist}' names '{pkg}.vanished',"
        " which cannot be found;"
    )

    dist = src.distribution({"edbt-object": f"{pkg}.base:Base"})
    error = _discovery_error(new_app, pkg, ENTITYDB_ENTRY_POINTS=["edbt-object"])
    assert str(error) == (
        f"Entry point 'edbt-object' of distribution '{dist}' is '{pkg}.base:Base'; a"
        " 'flask_entitydb.entities' entry point must name a package or module, not an object."
    )


@pytest.mark.parametrize("extend_existing", [False, True])
def test_same_table_in_two_modules_names_both_files(
    src: Src, new_app: Any, extend_existing: bool
) -> None:
    second = entity("Copy", "users")
    if extend_existing:
        second += "    __table_args__ = {'extend_existing': True}\n"
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/a_entity.py": entity("User", "users"),
            "entities/b_entity.py": second,
        }
    )
    error = _discovery_error(new_app, pkg)
    assert str(error) == (
        f"Entity modules '{pkg}/entities/a_entity.py' and '{pkg}/entities/b_entity.py'"
        " both define table 'users'; rename one of the tables."
    )


def test_single_table_inheritance_is_not_a_duplicate(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/a_entity.py": entity("User", "users", columns=2)
            + "    __mapper_args__ = {'polymorphic_on': 'c1', 'polymorphic_identity': 'u'}\n",
            "entities/b_entity.py": (
                "from {pkg}.entities.a_entity import User\n\n\n"
                "class Admin(User):\n"
                "    __mapper_args__ = {'polymorphic_identity': 'admin'}\n"
            ),
        }
    )
    app, _ = new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    details = app.extensions["entitydb"].discovery.details
    assert [(d.name, d.table) for d in details] == [("User", "users"), ("Admin", "users")]


def test_same_class_name_in_two_modules_names_both_files(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/a_entity.py": entity("User", "users"),
            "entities/sub/__init__.py": "",
            "entities/sub/b_entity.py": entity("User", "other_users"),
        }
    )
    error = _discovery_error(new_app, pkg)
    assert str(error).startswith(
        f"Entity modules '{pkg}/entities/a_entity.py' and '{pkg}/entities/sub/b_entity.py'"
        " both define a class named 'User';"
    )


def test_module_without_mapped_class_warns_with_its_file(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/user_entity.py": entity("User", "users"),
            "entities/mixin_entity.py": (
                "from {pkg}.base import Base\n\n\nclass Abstract(Base):\n    __abstract__ = True\n"
            ),
        }
    )
    with pytest.warns(EntityDiscoveryWarning) as caught:
        app, _ = new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    assert [str(w.message) for w in caught] == [
        f"Entity module '{pkg}/entities/mixin_entity.py' defines no class mapped on 'Base';"
        " add one or rename the file so it does not end in '_entity.py'."
    ]
    assert caught[0].filename == __file__  # points at the EntityDB(app) call
    assert list(app.extensions["entitydb"].discovery.entities) == ["User"]


def test_zero_entities_warns_with_places_searched(src: Src, new_app: Any) -> None:
    pkg = src.package({"models/__init__.py": ""})
    with pytest.warns(EntityDiscoveryWarning) as caught:
        app, _ = new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    assert [str(w.message) for w in caught] == [
        "No entity classes found; searched: entry point group 'flask_entitydb.entities'"
        f" (none selected by 'ENTITYDB_ENTRY_POINTS'), '{pkg}.entities' (default, does not"
        " exist). Put '*_entity.py' modules in one of these, or list your packages in"
        " 'ENTITYDB_ENTITY_PACKAGES'."
    ]
    assert app.extensions["entitydb"].discovery.entities == {}

    with pytest.warns(EntityDiscoveryWarning, match=rf"searched: '{pkg}.models' \(ENTITY"):
        new_app(
            pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS, ENTITYDB_ENTITY_PACKAGES=[f"{pkg}.models"]
        )


# -- flask db entities ----------------------------------------------------------------------


@pytest.fixture
def listed_app(src: Src, new_app: Any) -> tuple[Flask, str]:
    pkg = src.package(
        {
            "persistence/__init__.py": "",
            "persistence/entities/__init__.py": "",
            "persistence/entities/user_entity.py": entity("User", "users", columns=3),
            "persistence/entities/billing/invoice_entity.py": entity("Invoice", "invoices"),
            "extra/__init__.py": "",
            "extra/tag_entity.py": entity("Tag", "tags", columns=2),
        }
    )
    src.distribution({"edbt-acme": f"{pkg}.persistence.entities"})
    app, _ = new_app(
        pkg, ENTITYDB_ENTRY_POINTS=["edbt-acme"], ENTITYDB_ENTITY_PACKAGES=[f"{pkg}.extra"]
    )
    return app, pkg


def test_cli_entities_table(listed_app: tuple[Flask, str]) -> None:
    app, pkg = listed_app
    result = app.test_cli_runner().invoke(args=["db", "entities"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()]
    assert rows == [
        ["Class", "Table", "Module", "file", "Source", "Columns"],
        [
            "Invoice",
            "invoices",
            f"{pkg}/persistence/entities/billing/invoice_entity.py",
            "edbt-acme",
            "1",
        ],
        ["User", "users", f"{pkg}/persistence/entities/user_entity.py", "edbt-acme", "3"],
        ["Tag", "tags", f"{pkg}/extra/tag_entity.py", "config", "2"],
    ]
    lines = result.output.splitlines()
    column = lines[0].index("Table")  # aligned columns
    assert [line[column:].split()[0] for line in lines[1:]] == ["invoices", "users", "tags"]


def test_cli_entities_json(listed_app: tuple[Flask, str]) -> None:
    app, pkg = listed_app
    result = app.test_cli_runner().invoke(args=["db", "entities", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["entities"][1] == {
        "class": "User",
        "table": "users",
        "bind": "default",
        "module": f"{pkg}.persistence.entities.user_entity",
        "file": f"{pkg}/persistence/entities/user_entity.py",
        "source": "edbt-acme",
        "columns": 3,
        "discovered": True,
        "model": False,
    }
    assert [e["class"] for e in data["entities"]] == ["Invoice", "User", "Tag"]
    assert f"'{pkg}.extra' (ENTITYDB_ENTITY_PACKAGES)" in data["searched"]


def test_cli_entities_when_none_found(src: Src, new_app: Any) -> None:
    pkg = src.package({})
    with pytest.warns(EntityDiscoveryWarning):
        app, _ = new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    result = app.test_cli_runner().invoke(args=["db", "entities"])
    assert result.exit_code == 0
    assert result.output.startswith("No entities found; searched: entry point group")


APP_MODULE = """\
from flask import Flask

from flask_entitydb import EntityDB
from {pkg}.base import Base


def create_app():
    app = Flask(__name__)
    app.config.update(DB_CONNECTION_STRING="sqlite://", ENTITYDB_ENTRY_POINTS=[])
    EntityDB(app, base=Base)
    return app
"""


def _flask(src: Src, app: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src.root)}
    env.pop("FLASK_APP", None)
    flask = Path(sys.executable).with_name("flask")
    return subprocess.run(
        [str(flask), "--app", app, "db", "entities", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=src.root,
        timeout=60,
    )


@pytest.mark.parametrize("target", ["app:create_app", "wsgi"], ids=["factory", "module"])
def test_cli_discovery_error_is_one_line(src: Src, target: str) -> None:
    pkg = src.package(
        {
            "app.py": APP_MODULE,
            "wsgi.py": "from {pkg}.app import create_app\n\napp = create_app()\n",
            "entities/__init__.py": "",
            "entities/good_entity.py": entity("Good", "good"),
            "entities/broken_entity.py": "\n\nclass Broken(:\n",
        }
    )
    result = _flask(src, f"{pkg}.{target}")
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()  # one line, no traceback
    assert line.startswith(
        f"Error: Cannot import entity module '{pkg}/entities/broken_entity.py' (line 3):"
        " SyntaxError: "
    )

    (src.root / pkg / "entities/broken_entity.py").unlink()
    result = _flask(src, f"{pkg}.{target}", "--json")
    assert result.returncode == 0, result.stderr
    assert [e["file"] for e in json.loads(result.stdout)["entities"]] == [
        f"{pkg}/entities/good_entity.py"
    ]


# -- import order and failed imports ----------------------------------------------------------

USER_IMPORTS_OTHERS = """\
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

import {pkg}
from {pkg}.base import Base
from {pkg}.entities.message_entity import Message
from {pkg}.entities.post_entity import Post

{pkg}.log.append(__name__)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    messages: Mapped[list[Message]] = relationship(back_populates="author")

    def latest_post(self) -> Post | None:
        return None
"""

MESSAGE_IMPORTS_USER_MODULE = """\
from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

import {pkg}
from {pkg}.base import Base
from {pkg}.entities import user_entity

{pkg}.log.append(__name__)


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    author: Mapped[user_entity.User] = relationship(back_populates="messages")
"""


def test_entity_modules_that_import_each_other(src: Src, new_app: Any) -> None:
    files = {
        "entities/__init__.py": "",
        "entities/user_entity.py": USER_IMPORTS_OTHERS,
        "entities/message_entity.py": MESSAGE_IMPORTS_USER_MODULE,
        "entities/post_entity.py": entity("Post", "posts"),
    }
    pkg = src.package(files)
    # the app itself can import them, starting from the user module
    subprocess.run(
        [sys.executable, "-c", f"import {pkg}.entities.user_entity"],
        check=True,
        env={**os.environ, "PYTHONPATH": str(src.root)},
    )
    app, db = new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    assert list(db.state(app).discovery.entities) == ["Message", "Post", "User"]
    assert sorted(log_of(pkg)) == [
        "entities.message_entity",
        "entities.post_entity",
        "entities.user_entity",
    ]
    with app.app_context():
        assert set(db.metadata.tables) == {"users", "messages", "posts"}
        db.create_all()
        user = db.entities["User"](messages=[db.entities["Message"]()])
        db.session.add(user)
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(sa.table("messages")))


def test_a_module_failing_for_good_still_names_its_own_error(src: Src, new_app: Any) -> None:
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/a_entity.py": entity("A", "a"),
            "entities/b_entity.py": "import {pkg}.not_there\n",
        }
    )
    with pytest.raises(EntityDiscoveryError, match="ModuleNotFoundError: No module named"):
        new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)


FAILS_AFTER_ITS_CLASS = """\
import os

from sqlalchemy.orm import Mapped, mapped_column

from {pkg}.base import Base


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)


if os.environ.get("EDBT_ORDERS_BROKEN"):
    raise RuntimeError("ORDERS_API_KEY is not set")
"""


def test_module_that_raised_leaves_no_table_behind(
    src: Src, new_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = src.package(
        {
            "entities/__init__.py": "",
            "entities/order_entity.py": FAILS_AFTER_ITS_CLASS,
            "entities/user_entity.py": entity("User", "users"),
        }
    )
    base = importlib.import_module(f"{pkg}.base").Base
    monkeypatch.setenv("EDBT_ORDERS_BROKEN", "1")
    for _ in range(2):  # the same error again, not a duplicate table
        with pytest.raises(EntityDiscoveryError) as caught:
            new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
        assert str(caught.value) == (
            f"Cannot import entity module '{pkg}/entities/order_entity.py' (line 14):"
            " RuntimeError: ORDERS_API_KEY is not set."
        )
        assert "orders" not in base.metadata.tables

    monkeypatch.delenv("EDBT_ORDERS_BROKEN")
    app, db = new_app(pkg, import_name=pkg, ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    assert list(db.state(app).discovery.entities) == ["Order", "User"]
    with app.app_context():
        db.create_all()
        db.session.add(db.entities["Order"](id=1))
        db.session.commit()


def test_cli_warnings_are_one_line_and_not_repeated(src: Src) -> None:
    pkg = src.package(
        {
            "app.py": APP_MODULE,
            "entities/__init__.py": "",
            "entities/empty_entity.py": "X = 1\n",
        }
    )
    result = _flask(src, f"{pkg}.app:create_app")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"Warning: Entity module '{pkg}/entities/empty_entity.py' defines no class mapped on"
        " 'Base'; add one or rename the file so it does not end in '_entity.py'.",
        f"Warning: No entity classes found; searched: '{pkg}.entities' (default), entry point"
        " group 'flask_entitydb.entities' (none selected by 'ENTITYDB_ENTRY_POINTS'). Put"
        " '*_entity.py' modules in one of these, or list your packages in"
        " 'ENTITYDB_ENTITY_PACKAGES'.",
    ]

    (src.root / pkg / "entities/empty_entity.py").unlink()
    env = {**os.environ, "PYTHONPATH": str(src.root)}
    env.pop("FLASK_APP", None)
    flask = str(Path(sys.executable).with_name("flask"))
    app = f"{pkg}.app:create_app"
    subprocess.run([flask, "--app", app, "db", "init"], env=env, cwd=src.root, check=True)
    result = subprocess.run(
        [flask, "--app", app, "db", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        cwd=src.root,
        timeout=60,
    )
    assert result.returncode == 1
    # every command that works on a database names it first (test_cli_database_named.py)
    warning, error = without_database_line(result.stderr).splitlines()
    assert warning.startswith(f"Warning: No entity classes found; searched: '{pkg}.entities'")
    assert error == (
        "Error: No entities were found (see the warning above), so autogenerate would drop"
        " every table; nothing was written."
    )


LEGACY_ENTITY = """\
from sqlalchemy import Column, Integer

from {pkg}.legacy import Base


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
"""


def test_legacy_declarative_base_works(src: Src, make_app: Any) -> None:
    pkg = src.package(
        {
            "legacy.py": "from sqlalchemy.orm import declarative_base\nBase = declarative_base()\n",
            "entities/__init__.py": "",
            "entities/user_entity.py": LEGACY_ENTITY,
        }
    )
    base = importlib.import_module(f"{pkg}.legacy").Base
    app = make_app(pkg, DB_CONNECTION_STRING="sqlite://", ENTITYDB_ENTRY_POINTS=NO_ENTRY_POINTS)
    db = EntityDB(app, base=base)
    assert list(db.state(app).discovery.entities) == ["User"]
    with app.app_context():
        db.create_all()
        assert sa.inspect(db.engine).get_table_names() == ["users"]
