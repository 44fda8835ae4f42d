"""How discovery names entity modules and their files: the ``*_entity`` suffix, a
module's file relative to the ``sys.path`` entry it was imported from (for messages),
and its real path (to recognise it)."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

ENTITY_SUFFIX = "_entity"
"""Module names ending in this (files ``*_entity.py``) are entity modules."""


def relative_file(module: str, origin: str | None, is_package: bool = False) -> str:
    """``origin`` relative to the ``sys.path`` entry ``module`` was imported from."""
    if not origin or not os.path.isabs(origin):
        return module
    depth = module.count(".") + (2 if is_package else 1)
    return "/".join(origin.replace(os.sep, "/").split("/")[-depth:])


def module_file(name: str) -> str:
    """The file of module ``name`` (imported or not) as :func:`relative_file` gives it;
    ``name`` itself when it cannot be found."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    if spec is None:
        try:
            spec = importlib.util.find_spec(name)
        except Exception:
            spec = None
    if spec is None:
        return name
    return relative_file(name, spec.origin, spec.submodule_search_locations is not None)


def module_origin(module: ModuleType) -> str | None:
    """The path of the file ``module`` was imported from, if any."""
    spec = module.__spec__
    return spec.origin if spec is not None else getattr(module, "__file__", None)


def real_file(module: ModuleType) -> str:
    """The real absolute path of ``module``'s file (its name when it has none)."""
    origin = module_origin(module)
    return os.path.realpath(origin) if origin else module.__name__
