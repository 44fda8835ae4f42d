"""What discovery missed: ``*_entity.py`` files it did not import, and mapped classes on
the app's metadata that it did not discover (imported by hand).

A missed entity module is the most harmful mistake there is: its tables look deleted to
autogenerate. ``flask db entities``, ``migrate`` and ``check`` name such files, and
``migrate`` refuses to write a revision that drops a table while any exists.

The search is bounded and skips what cannot hold the app's code: hidden folders, virtual
environments, ``site-packages``, ``node_modules`` and build folders.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask

from flask_entitydb.discovery._app_metadata import other_states
from flask_entitydb.discovery._files import ENTITY_SUFFIX
from flask_entitydb.discovery._importing import live_mappers
from flask_entitydb.discovery._result import EntityInfo, entity_info
from flask_entitydb.state import EntityDBState

MAX_DIRECTORIES = 5000
"""At most this many folders are looked at."""
MAX_DEPTH = 10
"""Folders deeper than this below a root are not looked at."""

_SKIPPED = frozenset(
    {
        "__pycache__",
        "node_modules",
        "site-packages",
        "dist-packages",
        "build",
        "dist",
        "venv",
        "htmlcov",
        "instance",
    }
)


@dataclass(frozen=True)
class UndiscoveredModule:
    """An ``*_entity.py`` file in the app's project that discovery did not import."""

    file: str
    """The file relative to the folder it was found under, for example
    ``acme/models/comment_entity.py``."""
    path: str
    """Its absolute path."""
    module: str | None
    """Its dotted module name, when the path is one (``acme.models.comment_entity``)."""
    imported: bool
    """Whether it was imported anyway (by hand, not by discovery)."""

    def describe(self) -> str:
        """The file, and whether it was imported by hand, for messages."""
        by_hand = " (imported by hand)" if self.imported else ""
        return f"'{self.file}'{by_hand}"


def packages_hint(missed: Sequence[UndiscoveredModule]) -> str:
    """How to make discovery import ``missed``: their packages added to
    ``ENTITYDB_ENTITY_PACKAGES``, which replaces the default search (so the packages
    searched now must be listed too)."""
    packages = sorted({m.module.rpartition(".")[0] for m in missed if m.module and "." in m.module})
    named = f" ({', '.join(repr(p) for p in packages)})" if packages else ""
    return (
        f"add {'their packages' if len(missed) > 1 else 'its package'}{named} to"
        " 'ENTITYDB_ENTITY_PACKAGES', which replaces the default search, so list the"
        " packages searched now too ('flask db entities' shows them)"
    )


def project_roots(app: Flask) -> list[str]:
    """The folder the app's top-level package (or module) was imported from, and its
    parent when that is a ``src`` folder of a project (for ``Flask("name",
    root_path=...)``, that folder's); none for an installed app."""
    module = sys.modules.get(app.import_name.partition(".")[0])
    paths = list(getattr(module, "__path__", []) or [])
    origin = str(paths[0]) if paths else getattr(module, "__file__", None)
    if origin:
        root = os.path.dirname(os.path.realpath(origin))
    else:
        # Flask("name", root_path=...): no module of that name; the app's code is in
        # that folder. Without root_path Flask falls back to the working directory,
        # which says nothing of where the app's code is: nothing is searched then.
        if os.path.realpath(app.root_path) == os.path.realpath(os.getcwd()):
            return []
        root = os.path.dirname(os.path.realpath(app.root_path))
    if any(part in ("site-packages", "dist-packages") for part in root.split(os.sep)):
        return []
    parent = os.path.dirname(root)
    if os.path.basename(root) == "src" and any(
        os.path.exists(os.path.join(parent, name)) for name in ("pyproject.toml", "setup.py")
    ):
        return [parent]
    return [root]


def _skipped(entry: os.DirEntry[str]) -> bool:
    name = entry.name
    return (
        name.startswith(".")
        or name in _SKIPPED
        or name.endswith(".egg-info")
        or os.path.exists(os.path.join(entry.path, "pyvenv.cfg"))
    )


def entity_files(root: str) -> list[str]:
    """Absolute paths of the ``*_entity.py`` files under ``root``, sorted (bounded by
    :data:`MAX_DIRECTORIES` and :data:`MAX_DEPTH`)."""
    found: list[str] = []
    pending = [(root, 0)]
    visited = {os.path.realpath(root)}
    while pending and len(visited) <= MAX_DIRECTORIES:
        folder, depth = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                # symlinked folders are followed (each real folder once: no loops)
                if entry.is_dir():
                    real = os.path.realpath(entry.path)
                    if depth < MAX_DEPTH and not _skipped(entry) and real not in visited:
                        visited.add(real)
                        pending.append((entry.path, depth + 1))
                elif entry.name.endswith(ENTITY_SUFFIX + ".py") and entry.is_file():
                    found.append(entry.path)
            except OSError:
                continue
    return sorted(found)


def _module_name(relative: str) -> str | None:
    parts = relative[: -len(".py")].split("/")
    return ".".join(parts) if all(part.isidentifier() for part in parts) else None


def _imported(module: str | None, path: str) -> bool:
    loaded = sys.modules.get(module) if module else None
    file = getattr(loaded, "__file__", None)
    return bool(file) and os.path.realpath(str(file)) == path


def undiscovered_modules(app: Flask, state: EntityDBState) -> tuple[UndiscoveredModule, ...]:
    """The ``*_entity.py`` files under the app's project that neither this app's
    discovery nor another live app's of the process imported."""
    known = set(state.discovery.files)
    for other in other_states(app):
        known |= other.discovery.files
    result: list[UndiscoveredModule] = []
    for root in project_roots(app):
        for path in entity_files(root):
            real = os.path.realpath(path)
            if real in known:
                continue
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            module = _module_name(relative)
            result.append(UndiscoveredModule(relative, real, module, _imported(module, real)))
    return tuple(result)


def undiscovered_classes(state: EntityDBState, metadata: sa.MetaData) -> tuple[EntityInfo, ...]:
    """Classes mapped on the app's base whose table is in ``metadata`` (the app's) but
    that discovery did not find, sorted by module and name; their source is
    ``not discovered``."""
    discovered = set(state.discovery.entities.values())
    found: list[EntityInfo] = []
    for mapper in live_mappers(state.db.base):
        cls = mapper.class_
        table = mapper.local_table
        if cls in discovered or not isinstance(table, sa.Table):
            continue
        if table.key not in metadata.tables:
            continue
        found.append(entity_info(mapper, sys.modules[cls.__module__], "not discovered"))
    return tuple(sorted(found, key=lambda info: (info.module, info.name)))
