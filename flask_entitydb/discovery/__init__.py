"""Finding and importing every ``*_entity.py`` module of an app.

Places searched, in this order:

1. the packages (or single modules) named by installed ``flask_entitydb.entities`` entry
   points, sorted by label, optionally restricted by ``ENTITYDB_ENTRY_POINTS``;
2. the packages listed in ``ENTITYDB_ENTITY_PACKAGES``;
3. by default, the ``entities`` subpackage of the app's package (``<import_name>.entities``,
   or the enclosing package's ``entities`` when the app is a module inside a package), if
   it exists, unless ``ENTITYDB_ENTITY_PACKAGES`` is set or a selected entry point already
   names a package inside the app's top-level package.

Inside a package every module whose name ends in ``_entity`` is imported, at any subpackage
depth (namespace subpackages included), sorted by dotted name. No other module of the
package is imported, except the subpackages that contain entity modules. Modules are
imported through the normal import system, so a module imported for one app is reused, not
re-executed, for the next app.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import pkgutil
import re
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec, PathFinder
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType, ModuleType, TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapper

from flask_entitydb.errors import EntityDiscoveryError

ENTRY_POINT_GROUP = "flask_entitydb.entities"
"""The entry point group that names entity packages."""

ENTITY_SUFFIX = "_entity"
"""Module names ending in this (files ``*_entity.py``) are entity modules."""

_PACKAGES_KEY = "ENTITYDB_ENTITY_PACKAGES"
_ENTRY_POINTS_KEY = "ENTITYDB_ENTRY_POINTS"
_ALREADY_DEFINED = re.compile(r"Table '([^']+)' is already defined")


class EntityDiscoveryWarning(UserWarning):
    """Discovery found something suspicious: an entity module that defines no entity
    class, or no entity at all."""


@dataclass(frozen=True)
class EntityInfo:
    """One discovered entity class and where it came from."""

    name: str
    """Class name (the key in :attr:`Discovery.entities`)."""
    entity: type[DeclarativeBase]
    """The mapped class."""
    table: str
    """Name of the table it maps (with schema, if any)."""
    module: str
    """Dotted name of the module that defines it."""
    file: str
    """The module's file relative to the ``sys.path`` entry it was imported from, for
    example ``acme/persistence/entities/user_entity.py``."""
    source: str
    """Entry point label, ``config`` (``ENTITYDB_ENTITY_PACKAGES``) or ``default``."""
    columns: int
    """Number of columns of :attr:`table`."""


@dataclass(frozen=True)
class Discovery:
    """What discovery found for one app."""

    entities: Mapping[str, type[DeclarativeBase]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Class name -> entity class, in discovery order (read-only)."""
    details: tuple[EntityInfo, ...] = ()
    """One :class:`EntityInfo` per entity, in discovery order."""
    searched: tuple[str, ...] = ()
    """The places searched, described for people, for example
    ``'acme.entities' (ENTITYDB_ENTITY_PACKAGES)``; also the places looked at that do
    not exist."""
    modules: tuple[str, ...] = ()
    """Dotted names of every entity module discovery imported, sorted."""
    files: frozenset[str] = frozenset()
    """Real absolute paths of the files of :attr:`modules`."""
    tables: frozenset[str] = frozenset()
    """Keys of the tables of :attr:`details` in the base's metadata: the entities'
    tables (with their inherited tables), their association (``secondary``) tables and
    the tables the entity modules define at module level."""
    warnings: tuple[str, ...] = ()
    """The :class:`EntityDiscoveryWarning` messages, reported by :meth:`EntityDB.init_app`."""
    shown: bool = False
    """Whether :attr:`warnings` were printed on the ``flask`` command's stderr (so an
    error of the command need not repeat them)."""


@dataclass(frozen=True)
class _Place:
    """A package or module to search, and what to say about it in messages."""

    name: str
    source: str
    described: str
    missing: str
    """The error message for when it cannot be found."""


# -- where to look --------------------------------------------------------------------------


def _selected_entry_points(labels: tuple[str, ...] | None) -> list[EntryPoint]:
    installed = sorted(
        entry_points(group=ENTRY_POINT_GROUP),
        key=lambda ep: (ep.name, ep.value, ep.dist.name if ep.dist else ""),
    )
    if labels is None:
        return installed
    known = {ep.name for ep in installed}
    for label in labels:
        if label not in known:
            choices = ", ".join(f"'{name}'" for name in sorted(known)) or "none"
            raise EntityDiscoveryError(
                f"'{_ENTRY_POINTS_KEY}' names '{label}', but no installed distribution has"
                f" a '{ENTRY_POINT_GROUP}' entry point of that name (installed: {choices})."
            )
    return [ep for ep in installed if ep.name in labels]


def _entry_point_place(ep: EntryPoint) -> _Place:
    dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
    if ep.attr:
        raise EntityDiscoveryError(
            f"Entry point '{ep.name}' of distribution '{dist}' is '{ep.value}'; a"
            f" '{ENTRY_POINT_GROUP}' entry point must name a package or module, not an object."
        )
    return _Place(
        name=ep.module,
        source=ep.name,
        described=f"'{ep.module}' (entry point '{ep.name}' of '{dist}')",
        missing=(
            f"Entry point '{ep.name}' of distribution '{dist}' names '{ep.module}', which"
            f" cannot be found; fix the '{ENTRY_POINT_GROUP}' entry point of '{dist}' or"
            " reinstall it."
        ),
    )


def _default_candidates(import_name: str) -> list[str]:
    """``<import_name>.entities``, or the enclosing package's ``entities`` when the app
    is a plain module inside a package."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations is None and "." in import_name:
        return [f"{import_name.rpartition('.')[0]}.entities"]
    return [f"{import_name}.entities"]


def _places(
    import_name: str,
    entity_packages: tuple[str, ...] | None,
    labels: tuple[str, ...] | None,
) -> tuple[list[_Place], list[str]]:
    """The places to search, and descriptions of every place looked at (including
    those that do not exist), in order."""
    places: list[_Place] = []
    absent: list[str] = []
    selected = _selected_entry_points(labels)
    places.extend(_entry_point_place(ep) for ep in selected)
    if not selected:
        why = "none installed" if labels is None else f"none selected by '{_ENTRY_POINTS_KEY}'"
        absent.append(f"entry point group '{ENTRY_POINT_GROUP}' ({why})")
    for name in entity_packages or ():
        places.append(
            _Place(
                name=name,
                source="config",
                described=f"'{name}' ({_PACKAGES_KEY})",
                missing=(
                    f"'{_PACKAGES_KEY}' names '{name}', which cannot be found; check the"
                    " spelling and that the package is importable (on 'sys.path')."
                ),
            )
        )
    app_root = import_name.partition(".")[0]
    covered = any(p.name == app_root or p.name.startswith(app_root + ".") for p in places)
    if not entity_packages and not covered:
        for name in _default_candidates(import_name):
            if _find_spec(name) is not None:
                places.append(_Place(name, "default", f"'{name}' (default)", ""))
            else:
                absent.append(f"'{name}' (default, does not exist)")
    return places, [place.described for place in places] + absent


def _find_spec(name: str) -> ModuleSpec | None:
    """The spec of module ``name`` (its parent packages get imported), or ``None`` when
    it or a parent does not exist.

    :raises EntityDiscoveryError: a parent package fails to import.
    """
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError as exc:
        if _names_prefix(exc.name, name):
            return None
        raise _import_failure(name, exc) from exc
    except ValueError:  # a module in sys.modules without __spec__, e.g. '__main__'
        return None
    except Exception as exc:
        raise _import_failure(name, exc) from exc


def _names_prefix(missing: str | None, name: str) -> bool:
    """Whether the module that was not found is ``name`` or one of its parents."""
    return missing is not None and (missing == name or name.startswith(missing + "."))


# -- walking a package without importing it ---------------------------------------------


def _entity_modules(place: _Place) -> list[str]:
    """Dotted names of the entity modules of ``place``, sorted; ``place`` itself when it
    is a module rather than a package."""
    spec = _find_spec(place.name)
    if spec is None:
        raise EntityDiscoveryError(place.missing)
    if spec.submodule_search_locations is None:
        return [place.name]
    found = list(_walk(place.name, list(spec.submodule_search_locations)))
    return sorted(found, key=lambda name: name.split("."))


def _walk(package: str, locations: list[str]) -> Iterator[str]:
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
        yield from _walk(name, paths)


def _subdirectories(location: str) -> Iterator[os.DirEntry[str]]:
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


# -- importing, with errors that name the file ---------------------------------------------


def _relative_file(module: str, origin: str | None, is_package: bool = False) -> str:
    """``origin`` relative to the ``sys.path`` entry ``module`` was imported from."""
    if not origin or not os.path.isabs(origin):
        return module
    depth = module.count(".") + (2 if is_package else 1)
    return "/".join(origin.replace(os.sep, "/").split("/")[-depth:])


def _module_file(name: str) -> str:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    if spec is None:
        try:
            spec = importlib.util.find_spec(name)
        except Exception:
            spec = None
    if spec is None:
        return name
    return _relative_file(name, spec.origin, spec.submodule_search_locations is not None)


def _failed_module(exc: BaseException, fallback: str) -> str:
    """The module whose own code raised ``exc`` (the innermost frame of a module body)."""
    tb: TracebackType | None = exc.__traceback__
    failed = fallback
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "<module>":
            failed = str(tb.tb_frame.f_globals.get("__name__", failed))
        tb = tb.tb_next
    return failed


def _line_in(exc: BaseException, path: str | None) -> int | None:
    line = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if path is not None and tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _describe_failure(name: str, exc: BaseException) -> str:
    """Where in module ``name`` ``exc`` happened, and what it was."""
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        spec = None
    origin = spec.origin if spec is not None else None
    file = _relative_file(
        name, origin, spec is not None and spec.submodule_search_locations is not None
    )
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" if exc.filename == origin else f"'{exc.filename}'"
        if exc.filename != origin and exc.lineno is not None:
            where += f", line {exc.lineno}"
        return f"'{file}' ({where}): SyntaxError: {exc.msg}"
    line = _line_in(exc, origin)
    where = f" (line {line})" if line is not None else ""
    return f"'{file}'{where}: {_first_line(exc)}"


def _import_failure(name: str, exc: BaseException) -> EntityDiscoveryError:
    """The error for a failed import of module ``name``; names the module whose code
    raised too, when that is another one (a helper it imports, say)."""
    kind = "entity module" if name.endswith(ENTITY_SUFFIX) else "module"
    failed = _failed_module(exc, name)
    if failed == name:
        return EntityDiscoveryError(f"Cannot import {kind} {_describe_failure(name, exc)}.")
    return EntityDiscoveryError(
        f"Cannot import {kind} '{_module_file(name)}': {_describe_failure(failed, exc)}."
    )


def _duplicate_table(
    name: str, exc: BaseException, base: type[DeclarativeBase]
) -> EntityDiscoveryError | None:
    match = _ALREADY_DEFINED.search(str(exc)) if isinstance(exc, sa.exc.SQLAlchemyError) else None
    if match is None or match.group(1) not in base.metadata.tables:
        return None
    table = base.metadata.tables[match.group(1)]
    other = "an earlier definition outside the entity modules"
    for mapper in _mappers(base):
        if mapper.local_table is table and mapper.inherits is None:
            other = f"'{_module_file(mapper.class_.__module__)}'"
    return EntityDiscoveryError(
        f"Entity modules {other} and '{_module_file(name)}' both define table"
        f" '{table.fullname}'; rename one of the tables."
    )


def _mappers(base: type[DeclarativeBase]) -> Iterator[Mapper[DeclarativeBase]]:
    """Mappers of the subclasses of ``base`` (``registry.mappers`` raises after a class
    failed to map half-way)."""
    pending = list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        mapper = sa.inspect(cls, raiseerr=False)
        if isinstance(mapper, Mapper):
            yield mapper


_RECLASSED = (
    "This declarative base already contains a class with the same class name and module name"
)
_import_failed = False
"""Whether an entity module's import failed earlier in this process: the classes it
defined before failing are still in the base's string-lookup registry, and SQLAlchemy
warns when the module defines them again."""


def _import(name: str, base: type[DeclarativeBase]) -> ModuleType:
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
        error = _duplicate_table(name, exc, base) or _import_failure(name, exc)
        raise error from exc


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
    for mapper in _mappers(base):
        cls = mapper.class_
        if getattr(sys.modules.get(cls.__module__), cls.__name__, None) is cls:
            live.update(table.key for table in mapper.tables if isinstance(table, sa.Table))
    for name in set(sys.modules) - modules_before:
        namespace = getattr(sys.modules.get(name), "__dict__", None) or {}
        for value in list(namespace.values()):
            if isinstance(value, sa.Table) and value.metadata is metadata:
                live.add(value.key)
    for key in new:
        if key not in live:
            metadata.remove(metadata.tables[key])


def _import_all(names: list[tuple[str, str]], base: type[DeclarativeBase]) -> dict[str, ModuleType]:
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


# -- collecting entities -------------------------------------------------------------------


def _mapped_classes(
    module: ModuleType, base: type[DeclarativeBase]
) -> Iterator[Mapper[DeclarativeBase]]:
    for value in list(vars(module).values()):
        if (
            isinstance(value, type)
            and issubclass(value, base)
            and value.__module__ == module.__name__
        ):
            mapper = sa.inspect(value, raiseerr=False)
            if isinstance(mapper, Mapper):
                yield mapper


def _info(mapper: Mapper[DeclarativeBase], module: ModuleType, source: str) -> EntityInfo:
    table = mapper.local_table
    name = table.fullname if isinstance(table, sa.Table) else str(table)
    spec = module.__spec__
    return EntityInfo(
        name=mapper.class_.__name__,
        entity=mapper.class_,
        table=name,
        module=module.__name__,
        file=_relative_file(module.__name__, spec.origin if spec else module.__file__),
        source=source,
        columns=len(table.columns),
    )


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
    places, searched = _places(import_name, entity_packages, entry_points)
    names: dict[str, _Place] = {}
    for place in places:
        for name in _entity_modules(place):
            names.setdefault(name, place)
    modules = _import_all([(name, place.name) for name, place in names.items()], base)
    messages: list[str] = []
    details: list[EntityInfo] = []
    for name, place in names.items():
        module = modules[name]
        found = [_info(mapper, module, place.source) for mapper in _mapped_classes(module, base)]
        if not found:
            messages.append(
                f"Entity module '{_module_file(name)}' defines no class mapped on"
                f" '{base.__name__}'; add one or rename the file so it does not end in"
                " '_entity.py'."
            )
        details.extend(found)
    _check_unique(details)
    if not details and warn_if_empty:
        messages.append(
            f"No entity classes found; searched: {', '.join(searched)}. Put '*_entity.py'"
            f" modules in one of these, or list your packages in '{_PACKAGES_KEY}'."
        )
    return Discovery(
        entities=MappingProxyType({info.name: info.entity for info in details}),
        details=tuple(details),
        searched=tuple(searched),
        modules=tuple(sorted(names)),
        files=frozenset(_real_file(module) for module in modules.values()),
        tables=_claimed_tables(base, details, modules.values()),
        warnings=tuple(messages),
    )


def _real_file(module: ModuleType) -> str:
    spec = module.__spec__
    origin = spec.origin if spec is not None else getattr(module, "__file__", None)
    return os.path.realpath(origin) if origin else module.__name__


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
    import click
    from flask.cli import ScriptInfo

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
        import click

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
    package_dir = os.path.dirname(__file__) + os.sep
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package_dir):
        frame = frame.f_back
        level += 1
    return level


def _parents(name: str, root: str) -> Iterator[str]:
    """The packages between ``root`` (included) and module ``name`` (excluded)."""
    if name == root:
        return
    parts = name.split(".")
    for end in range(root.count(".") + 1, len(parts)):
        yield ".".join(parts[:end])
