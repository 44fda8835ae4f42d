"""Where discovery looks, in order: the packages named by installed entry points, those of
``ENTITYDB_ENTITY_PACKAGES``, else the app's own ``entities`` package; and the entity
modules each place holds."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from importlib.metadata import EntryPoint, entry_points

from flask_entitydb.discovery._import_errors import import_failure
from flask_entitydb.discovery._walk import walk
from flask_entitydb.errors import EntityDiscoveryError

ENTRY_POINT_GROUP = "flask_entitydb.entities"
"""The entry point group that names entity packages."""

PACKAGES_KEY = "ENTITYDB_ENTITY_PACKAGES"
ENTRY_POINTS_KEY = "ENTITYDB_ENTRY_POINTS"


@dataclass(frozen=True)
class Place:
    """A package or module to search, and what to say about it in messages."""

    name: str
    source: str
    described: str
    missing: str
    """The error message for when it cannot be found."""


def places(
    import_name: str,
    entity_packages: tuple[str, ...] | None,
    labels: tuple[str, ...] | None,
) -> tuple[list[Place], list[str]]:
    """The places to search, and descriptions of every place looked at (including
    those that do not exist), in order."""
    found: list[Place] = []
    absent: list[str] = []
    selected = _selected_entry_points(labels)
    found.extend(_entry_point_place(ep) for ep in selected)
    if not selected:
        why = "none installed" if labels is None else f"none selected by '{ENTRY_POINTS_KEY}'"
        absent.append(f"entry point group '{ENTRY_POINT_GROUP}' ({why})")
    for name in entity_packages or ():
        found.append(
            Place(
                name=name,
                source="config",
                described=f"'{name}' ({PACKAGES_KEY})",
                missing=(
                    f"'{PACKAGES_KEY}' names '{name}', which cannot be found; check the"
                    " spelling and that the package is importable (on 'sys.path')."
                ),
            )
        )
    app_root = import_name.partition(".")[0]
    covered = any(p.name == app_root or p.name.startswith(app_root + ".") for p in found)
    if not entity_packages and not covered:
        for name in _default_candidates(import_name):
            if _find_spec(name) is not None:
                found.append(Place(name, "default", f"'{name}' (default)", ""))
            else:
                absent.append(f"'{name}' (default, does not exist)")
    return found, [place.described for place in found] + absent


def entity_modules(place: Place) -> list[str]:
    """Dotted names of the entity modules of ``place``, sorted; ``place`` itself when it
    is a module rather than a package.

    :raises EntityDiscoveryError: ``place`` does not exist, or a parent package of it
        fails to import.
    """
    spec = _find_spec(place.name)
    if spec is None:
        raise EntityDiscoveryError(place.missing)
    if spec.submodule_search_locations is None:
        return [place.name]
    found = list(walk(place.name, list(spec.submodule_search_locations)))
    return sorted(found, key=lambda name: name.split("."))


def _selected_entry_points(labels: tuple[str, ...] | None) -> list[EntryPoint]:
    """The installed entry points of :data:`ENTRY_POINT_GROUP`, sorted by label; only
    those named by ``labels`` (``ENTITYDB_ENTRY_POINTS``) when it is set."""
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
                f"'{ENTRY_POINTS_KEY}' names '{label}', but no installed distribution has"
                f" a '{ENTRY_POINT_GROUP}' entry point of that name (installed: {choices})."
            )
    return [ep for ep in installed if ep.name in labels]


def _entry_point_place(ep: EntryPoint) -> Place:
    """The package or module that entry point ``ep`` names."""
    dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
    if ep.attr:
        raise EntityDiscoveryError(
            f"Entry point '{ep.name}' of distribution '{dist}' is '{ep.value}'; a"
            f" '{ENTRY_POINT_GROUP}' entry point must name a package or module, not an object."
        )
    return Place(
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
        raise import_failure(name, exc) from exc
    except ValueError:  # a module in sys.modules without __spec__, e.g. '__main__'
        return None
    except Exception as exc:
        raise import_failure(name, exc) from exc


def _names_prefix(missing: str | None, name: str) -> bool:
    """Whether the module that was not found is ``name`` or one of its parents."""
    return missing is not None and (missing == name or name.startswith(missing + "."))
