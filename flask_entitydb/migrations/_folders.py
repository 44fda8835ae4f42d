"""Where each bind's migrations folder is (importing nothing, so the pytest plugin can find
it without loading Alembic when the test schema is reused)."""

from __future__ import annotations

import os

BINDS_FOLDER = "binds"
"""Folder, inside the migrations folder, holding one migrations folder per other bind."""


def bind_directory(path: str, key: str | None) -> str:
    """The migrations folder of bind ``key`` inside the migrations folder ``path``."""
    return path if key is None else os.path.join(path, BINDS_FOLDER, key)
