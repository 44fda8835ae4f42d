"""``ENTITYDB_MODEL_MODULES``: the modules holding an app's Flask-SQLAlchemy-style models
(default: the app package's ``models`` module or package, when it exists)."""

from __future__ import annotations

import importlib.util

from flask import Flask

from flask_entitydb._settings.values import string_list

MODEL_MODULES_KEY = "ENTITYDB_MODEL_MODULES"


def default_model_modules(import_name: str) -> tuple[str, ...]:
    """``<app package>.models`` when it exists (``models.py`` or a ``models`` package)."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        spec = None
    package = import_name
    if spec is not None and spec.submodule_search_locations is None and "." in import_name:
        package = import_name.rpartition(".")[0]
    name = f"{package}.models"
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    return (name,) if found is not None else ()


def read_model_modules(app: Flask) -> tuple[str, ...]:
    """``ENTITYDB_MODEL_MODULES`` of ``app`` (a list, or a string of names separated by
    commas or spaces), else :func:`default_model_modules`."""
    names = string_list(app, MODEL_MODULES_KEY, "module names", "acme.models")
    return default_model_modules(app.import_name) if names is None else names
