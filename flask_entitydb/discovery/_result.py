"""What discovery found for an app (:class:`Discovery`, one :class:`EntityInfo` per
entity) and the warning it gives when that looks wrong."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapper

from flask_entitydb.discovery._files import module_origin, relative_file


class EntityDiscoveryWarning(UserWarning):
    """Discovery found something suspicious: an entity module that defines no entity
    class, or no entity at all."""

    # its public place, shown in tracebacks when warnings are errors
    __module__ = "flask_entitydb.discovery"


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
    claim_tables: Callable[[], frozenset[str]] = field(default=frozenset, repr=False, compare=False)
    """Computes :attr:`tables` when it is first read (it configures the mappers, which
    an app that only starts or a ``flask db current`` need not pay for)."""
    warnings: tuple[str, ...] = ()
    """The :class:`EntityDiscoveryWarning` messages, reported by :meth:`EntityDB.init_app`."""
    shown: bool = False
    """Whether :attr:`warnings` were printed on the ``flask`` command's stderr (so an
    error of the command need not repeat them)."""

    @property
    def tables(self) -> frozenset[str]:
        """Keys of the tables of :attr:`details` in the base's metadata: the entities'
        tables (with their inherited tables), their association (``secondary``) tables
        and the tables the entity modules define at module level."""
        found: frozenset[str] | None = self.__dict__.get("_tables")
        if found is None:
            found = self.claim_tables()
            object.__setattr__(self, "_tables", found)  # frozen: computed once
        return found


def entity_info(mapper: Mapper[DeclarativeBase], module: ModuleType, source: str) -> EntityInfo:
    """The :class:`EntityInfo` of the class of ``mapper``, defined in ``module``."""
    cls = mapper.class_
    table = mapper.local_table
    return EntityInfo(
        name=cls.__name__,
        entity=cls,
        table=table.fullname if isinstance(table, sa.Table) else str(table),
        module=cls.__module__,
        file=relative_file(cls.__module__, module_origin(module)),
        source=source,
        columns=len(table.columns),
    )
