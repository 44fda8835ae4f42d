"""The squashed revisions of a migrations folder: files in ``<folder>/squashed/``, beside
``versions/`` rather than in it, so that Alembic's graph (and Alembic run directly) keeps
the revisions they replace. Each has the id of the last revision it replaces: it stands
for the schema that revision leaves, so a database started from it is at that revision.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from alembic.config import Config
from alembic.script import ScriptDirectory

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._server_facts import MYSQL

FOLDER = "squashed"
"""The folder of the squashed revisions, inside the migrations folder."""


@dataclass(frozen=True)
class SquashedFile:
    """A squashed revision file."""

    revision: str
    """The id of the last revision it replaces (and its own)."""
    replaces: tuple[str, ...]
    """The revisions it replaces, oldest first."""
    fingerprint: str
    """The SHA-256 of their files when it was written."""
    backend: str
    """The backend it was written and proved on (:func:`backend_family`)."""
    path: str


def folder_of(config: Config) -> str:
    """``<migrations folder>/squashed``."""
    return os.path.join(str(config.get_main_option("script_location")), FOLDER)


def backend_family(name: str) -> str:
    """The backend a squashed revision is for: MySQL and MariaDB are one."""
    return "mysql" if name in MYSQL else name


def file_name(revision: str, message: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "squashed"
    return f"{revision}_{slug}.py"


@contextmanager
def locations(config: Config, path: str) -> Iterator[None]:
    """Make Alembic load the revisions of the folder ``path`` only, inside the block."""
    before = config.get_main_option("version_locations")
    separator = config.get_main_option("path_separator")
    if separator is None:
        config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", path.replace("%", "%%"))
    try:
        yield
    finally:
        if before is None:
            config.remove_main_option("version_locations")
        else:
            config.set_main_option("version_locations", before.replace("%", "%%"))
        if separator is None:
            config.remove_main_option("path_separator")


def squashed_files(config: Config) -> list[SquashedFile]:
    """The squashed revisions of ``config``'s folder (none when it has no ``squashed/``).

    :raises MigrationError: a file there is not a squashed revision.
    """
    path = folder_of(config)
    if not os.path.isdir(path):
        return []
    with locations(config, path):
        script = ScriptDirectory.from_config(config)
        found = []
        for item in script.walk_revisions():
            module = item.module
            replaces = getattr(module, "replaces", None)
            fingerprint = getattr(module, "replaced_sha256", None)
            if item.down_revision is not None or not replaces or not fingerprint:
                raise MigrationError(
                    f"The file '{item.path}' is not a squashed revision written by 'flask db"
                    f" squash'; move it out of '{path}'."
                )
            found.append(
                SquashedFile(
                    revision=item.revision,
                    replaces=tuple(replaces),
                    fingerprint=str(fingerprint),
                    backend=str(getattr(module, "squashed_on", "")),
                    path=os.path.abspath(item.path),
                )
            )
    return found


def write(config: Config, name: str, text: str) -> str:
    """Write the squashed revision ``name``; its path."""
    path = folder_of(config)
    os.makedirs(path, exist_ok=True)
    target = os.path.join(path, name)
    with open(target, "w", encoding="utf-8") as file:
        file.write(text)
    return os.path.abspath(target)
