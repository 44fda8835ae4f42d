"""Discovery for one app: search the places, import the entity modules, collect their
entity classes into a :class:`Discovery`, and report its warnings."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from types import MappingProxyType, ModuleType
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import ScriptInfo
from sqlalchemy.orm import DeclarativeBase, Mapper

from flask_entitydb.discovery._files import module_file, real_file
from flask_entitydb.discovery._importing import import_all
from flask_entitydb.discovery._places import PACKAGES_KEY, Place, entity_modules, places
from flask_entitydb.discovery._result import (
    Discovery,
    EntityDiscoveryWarning,
    EntityInfo,
    entity_info,
)
from flask_entitydb.errors import EntityDiscoveryError

_PACKAGE_DIR = os.path.dirname(os.path.dirname(__file__)) + os.sep
"""The folder of flask_entitydb, whose frames a warning's ``stacklevel`` skips."""


def discover_entities(
    import_name: str,
    base: type[DeclarativeBase],
    *,
    entity_packages: tuple[str, ...] | None,
    entry_points: tuple[str, ...] | None,
    warn_if_empty: bool = True,
) -> Discovery:
    """Import every entity module configured for the app named ``import_name`` and
    collect the classes mapped on ``base`` that they define.

    Entity modules may import each other at the top, in any order the app itself can
    import them: a module that fails is tried again once the others are imported.

    :param entity_packages: ``ENTITYDB_ENTITY_PACKAGES``.
    :param entry_points: ``ENTITYDB_ENTRY_POINTS`` (``None``: all installed).
    :param warn_if_empty: warn when no entity is found (off for apps whose models live
        in their own modules, ``EntityDB(flask_sqlalchemy_models=True)``).
    :raises EntityDiscoveryError: a package or module is missing or fails to import, or
        two entity modules define the same table or class name.
    :returns: what was found; its :attr:`Discovery.warnings` (an entity module that
        defines no class mapped on ``base``, or no entity at all) are for
        :func:`report_warnings`.
    """
    searched_places, searched = places(import_name, entity_packages, entry_points)
    names: dict[str, Place] = {}
    for place in searched_places:
        for name in entity_modules(place):
            names.setdefault(name, place)
    modules = import_all([(name, place.name) for name, place in names.items()], base)
    messages: list[str] = []
    details: list[EntityInfo] = []
    for name, place in names.items():
        module = modules[name]
        found = [
            entity_info(mapper, module, place.source) for mapper in _mapped_classes(module, base)
        ]
        if not found:
            messages.append(
                f"Entity module '{module_file(name)}' defines no class mapped on"
                f" '{base.__name__}'; add one or rename the file so it does not end in"
                " '_entity.py'."
            )
        details.extend(found)
    _check_unique(details)
    if not details and warn_if_empty:
        messages.append(
            f"No entity classes found; searched: {', '.join(searched)}. Put '*_entity.py'"
            f" modules in one of these, or list your packages in '{PACKAGES_KEY}'."
        )
    return Discovery(
        entities=MappingProxyType({info.name: info.entity for info in details}),
        details=tuple(details),
        searched=tuple(searched),
        modules=tuple(sorted(names)),
        files=frozenset(real_file(module) for module in modules.values()),
        claim_tables=functools.partial(_claimed_tables, base, details, list(modules.values())),
        warnings=tuple(messages),
    )


def _mapped_classes(
    module: ModuleType, base: type[DeclarativeBase]
) -> Iterator[Mapper[DeclarativeBase]]:
    """Mappers of the classes mapped on ``base`` that ``module`` itself defines."""
    for value in list(vars(module).values()):
        if (
            isinstance(value, type)
            and issubclass(value, base)
            and value.__module__ == module.__name__
        ):
            mapper = sa.inspect(value, raiseerr=False)
            if isinstance(mapper, Mapper):
                yield mapper


def _check_unique(details: list[EntityInfo]) -> None:
    """Class names and tables must be unique among the discovered entities."""
    tables: dict[str, EntityInfo] = {}
    classes: dict[str, EntityInfo] = {}
    for info in details:
        first = classes.setdefault(info.name, info)
        if first is not info:
            raise EntityDiscoveryError(
                f"Entity modules '{first.file}' and '{info.file}' both define a class named"
                f" '{info.name}'; rename one of them ('db.entities' is keyed by class name)."
            )
        mapper: Mapper[DeclarativeBase] = sa.inspect(info.entity)
        if mapper.inherits is not None and mapper.local_table is mapper.inherits.local_table:
            continue  # single-table inheritance shares its parent's table
        first = tables.setdefault(info.table, info)
        if first is not info and first.module != info.module:
            raise EntityDiscoveryError(
                f"Entity modules '{first.file}' and '{info.file}' both define table"
                f" '{info.table}'; rename one of the tables."
            )


def _claimed_tables(
    base: type[DeclarativeBase], details: list[EntityInfo], modules: Iterable[ModuleType]
) -> frozenset[str]:
    """Keys of the tables in ``base``'s metadata that the discovered entities and
    modules define."""
    metadata = base.metadata
    tables: list[Any] = []
    for info in details:
        mapper: Mapper[DeclarativeBase] = sa.inspect(info.entity)
        tables.extend(mapper.tables)
        tables.extend(rel.secondary for rel in mapper.relationships)
    for module in modules:
        tables.extend(vars(module).values())
    return frozenset(
        table.key
        for table in tables
        if isinstance(table, sa.Table) and metadata.tables.get(table.key) is table
    )


def under_flask_cli() -> bool:
    """Whether the ``flask`` command is loading the app (its click context is active)."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.find_object(ScriptInfo) is not None


def report_warnings(discovery: Discovery) -> Discovery:
    """Report the warnings of ``discovery``: under the ``flask`` command as one
    ``Warning: ...`` line each on stderr, elsewhere as :class:`EntityDiscoveryWarning`
    (pointing at the caller's ``init_app`` or ``EntityDB(app)`` line).

    :returns: ``discovery``, with :attr:`Discovery.shown` set when printed.
    """
    if not discovery.warnings:
        return discovery
    if under_flask_cli():
        for message in discovery.warnings:
            click.secho(f"Warning: {message}", fg="yellow", err=True)
        return dataclasses.replace(discovery, shown=True)
    stacklevel = _caller_stacklevel()
    for message in discovery.warnings:
        warnings.warn(message, EntityDiscoveryWarning, stacklevel=stacklevel)
    return discovery


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning issued by our caller at the first frame
    outside flask_entitydb (the user's ``init_app`` or ``EntityDB(app)`` call)."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level
