"""Listing the entity modules of a package without importing it: every ``*_entity``
module at any subpackage depth, namespace subpackages (folders without
``__init__.py``) included."""

from __future__ import annotations

import os
import pkgutil
from collections.abc import Iterator
from importlib.machinery import PathFinder

from flask_entitydb.discovery._files import ENTITY_SUFFIX


def walk(package: str, locations: list[str]) -> Iterator[str]:
    """Dotted names of the entity modules of ``package``, found in the folders
    ``locations`` (its ``__path__``), each subpackage after the package's own."""
    subpackages: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules(locations, package + "."):
        if info.ispkg:
            spec = PathFinder.find_spec(info.name, locations)
            if spec is not None and spec.submodule_search_locations is not None:
                subpackages.setdefault(info.name, list(spec.submodule_search_locations))
        elif info.name.endswith(ENTITY_SUFFIX):
            yield info.name
    # directories without __init__.py are (namespace) subpackages too
    for location in locations:
        for entry in _subdirectories(location):
            name = f"{package}.{entry.name}"
            if name not in subpackages or entry.path not in subpackages[name]:
                subpackages.setdefault(name, []).append(entry.path)
    for name, paths in subpackages.items():
        yield from walk(name, paths)


def _subdirectories(location: str) -> Iterator[os.DirEntry[str]]:
    """The folders of ``location`` that are namespace subpackages: named like a module,
    without ``__init__.py``."""
    try:
        entries = list(os.scandir(location))
    except OSError:  # not a directory (a zip file, say): pkgutil covers it
        return
    for entry in entries:
        if (
            entry.name.isidentifier()
            and entry.name != "__pycache__"
            and entry.is_dir()
            and not os.path.exists(os.path.join(entry.path, "__init__.py"))
        ):
            yield entry
