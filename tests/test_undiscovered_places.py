"""The drop-table safety net finds the ``*_entity.py`` files discovery missed wherever the
app's code is: in a symlinked folder, and for an app made as
``Flask("name", root_path=...)`` (no module of that name)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from helpers.migration_apps import INIT, ORDER_ENTITY, TAG_ENTITY, USER_ENTITY, AppPackage, ok

ROOT_PATH_INIT = INIT.replace(
    "from flask import Flask\n", "import os\n\nfrom flask import Flask\n"
).replace(
    "    app = Flask(__name__)\n",
    "    app = Flask('myshop', root_path=os.path.dirname(os.path.abspath(__file__)))\n"
    "    app.config['ENTITYDB_ENTITY_PACKAGES'] = [__name__ + '.entities']\n",
)


def _three_tables(package: AppPackage) -> None:
    package.write_entity("user", USER_ENTITY)
    package.write_entity("order", ORDER_ENTITY)
    package.write_entity("tag", TAG_ENTITY)
    ok(package.cli("init"))
    ok(package.cli("migrate", "-m", "first"))
    ok(package.cli("upgrade"))


def _assert_drop_refused(package: AppPackage, missed: str) -> None:
    before = package.revision_files()
    result = package.cli("migrate", "--allow-drop")
    assert result.exit_code == 1, result.output
    assert "Not writing a revision that drops 'tags'" in result.stderr
    assert missed in result.stderr
    assert package.revision_files() == before


def test_a_missed_module_in_a_symlinked_folder(sqlite_package: AppPackage, tmp_path: Path) -> None:
    package = sqlite_package
    _three_tables(package)
    shared = tmp_path / "shared_models"
    shared.mkdir()
    (shared / "__init__.py").write_text("")
    shutil.move(package.path / "entities" / "tag_entity.py", shared / "tag_entity.py")
    os.symlink(shared, package.path / "models", target_is_directory=True)
    _assert_drop_refused(package, "models/tag_entity.py")


def test_a_missed_module_of_an_app_with_its_own_root_path(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    package.write("__init__.py", ROOT_PATH_INIT)
    _three_tables(package)
    package.write("models/__init__.py", "")
    shutil.move(
        package.path / "entities" / "tag_entity.py", package.path / "models" / "tag_entity.py"
    )
    _assert_drop_refused(package, "models/tag_entity.py")
