"""Finding and importing every ``*_entity.py`` module (placeholder until discovery lands)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sqlalchemy.orm import DeclarativeBase


@dataclass(frozen=True)
class Discovery:
    """What discovery found for one app."""

    entities: Mapping[str, type[DeclarativeBase]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Class name -> entity class, in discovery order (read-only)."""
    searched: tuple[str, ...] = ()
    """Human-readable list of the places that were searched."""


def discover_entities(
    import_name: str,
    base: type[DeclarativeBase],
    *,
    entity_packages: tuple[str, ...] | None,
    entry_points: tuple[str, ...] | None,
) -> Discovery:
    """Import every entity module configured for the app named ``import_name``."""
    return Discovery()
