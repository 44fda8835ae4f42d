"""Importing entity modules: in an order that works when they import each other, with
errors that name the file (two modules defining one table included), and without
leaving the tables of a failed import behind in the metadata."""

from __future__ import annotations

import importlib
import re
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapper

from flask_entitydb.discovery._files import module_file
from flask_entitydb.discovery._import_errors import import_failure
from flask_entitydb.errors import EntityDiscoveryError

_ALREADY_DEFINED = re.compile(r"Table '([^']+)' is already defined")
_RECLASSED = (
    "This declarative base already contains a class with the same class name and module name"
)
_import_failed = False
"""Whether an entity module's import failed earlier in this process: the classes it
defined before failing are still in the base's string-lookup registry, and SQLAlchemy
warns when the module defines them again."""


def import_all(names: list[tuple[str, str]], base: type[DeclarativeBase]) -> dict[str, ModuleType]:
    """Import the modules ``names`` (pairs of module and the package searched, whose
    packages in between are imported first), in order; a
    module that fails is tried again after the others, as long as a round imports
    something new: entity modules that import each other can need another order than
    the alphabetical one (the app's own imports may have started at another module).

    :raises EntityDiscoveryError: a module still fails when no round makes progress.
    """
    modules: dict[str, ModuleType] = {}
    pending = names
    while pending:
        failed: list[tuple[tuple[str, str], EntityDiscoveryError]] = []
        for name, root in pending:
            try:
                for parent in _parents(name, root):
                    _import(parent, base)
                modules[name] = _import(name, base)
            except EntityDiscoveryError as error:
                failed.append(((name, root), error))
        if len(failed) == len(pending):
            raise failed[0][1]
        pending = [item for item, _ in failed]
    return modules


def _parents(name: str, root: str) -> Iterator[str]:
    """The packages between ``root`` (included) and module ``name`` (excluded)."""
    if name == root:
        return
    parts = name.split(".")
    for end in range(root.count(".") + 1, len(parts)):
        yield ".".join(parts[:end])


def _import(name: str, base: type[DeclarativeBase]) -> ModuleType:
    """Module ``name``, imported unless it already is.

    :raises EntityDiscoveryError: it fails to import (its tables are then forgotten).
    """
    global _import_failed
    module = sys.modules.get(name)
    if module is not None:
        return module
    tables_before = set(base.metadata.tables)
    modules_before = set(sys.modules)
    try:
        with warnings.catch_warnings():
            if _import_failed:
                # a class of a module that failed half-way is defined again: expected
                warnings.filterwarnings("ignore", message=_RECLASSED, category=sa.exc.SAWarning)
            return importlib.import_module(name)
    except Exception as exc:
        _import_failed = True
        _forget_failed(base, tables_before, modules_before)
        error = _duplicate_table(name, exc, base) or import_failure(name, exc)
        raise error from exc


def _duplicate_table(
    name: str, exc: BaseException, base: type[DeclarativeBase]
) -> EntityDiscoveryError | None:
    """The error for module ``name`` defining a table an entity module already defined,
    when that is why ``exc`` was raised."""
    match = _ALREADY_DEFINED.search(str(exc)) if isinstance(exc, sa.exc.SQLAlchemyError) else None
    if match is None or match.group(1) not in base.metadata.tables:
        return None
    table = base.metadata.tables[match.group(1)]
    other = "an earlier definition outside the entity modules"
    for mapper in mappers(base):
        if mapper.local_table is table and mapper.inherits is None:
            other = f"'{module_file(mapper.class_.__module__)}'"
    return EntityDiscoveryError(
        f"Entity modules {other} and '{module_file(name)}' both define table"
        f" '{table.fullname}'; rename one of the tables."
    )


def _forget_failed(
    base: type[DeclarativeBase], tables_before: set[str], modules_before: set[str]
) -> None:
    """Remove from the metadata the tables that modules whose import just failed had
    added, so that importing them again (a retry, or the next app of the process) does
    not find them already defined. Tables of modules imported successfully meanwhile
    (by the failed one) stay."""
    metadata = base.metadata
    new = [key for key in metadata.tables if key not in tables_before]
    if not new:
        return
    live: set[str] = set()
    for mapper in live_mappers(base):
        live.update(table.key for table in mapper.tables if isinstance(table, sa.Table))
    for name in set(sys.modules) - modules_before:
        namespace = getattr(sys.modules.get(name), "__dict__", None) or {}
        for value in list(namespace.values()):
            if isinstance(value, sa.Table) and value.metadata is metadata:
                live.add(value.key)
    for key in new:
        if key not in live:
            metadata.remove(metadata.tables[key])


def mappers(base: type[DeclarativeBase]) -> Iterator[Mapper[DeclarativeBase]]:
    """Mappers of the subclasses of ``base`` (``registry.mappers`` raises after a class
    failed to map half-way)."""
    pending = list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        mapper = sa.inspect(cls, raiseerr=False)
        if isinstance(mapper, Mapper):
            yield mapper


def live_mappers(base: type[DeclarativeBase]) -> Iterator[Mapper[DeclarativeBase]]:
    """:func:`mappers` of the classes that are still their module's attribute (not left
    over from a module whose import failed)."""
    for mapper in mappers(base):
        cls = mapper.class_
        if getattr(sys.modules.get(cls.__module__), cls.__name__, None) is cls:
            yield mapper
