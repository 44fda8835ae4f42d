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

The modules of this package, each with one job:

- ``_discover``: :func:`discover_entities` (search, import and collect, for one app)
  and :func:`report_warnings`;
- ``_places``: where to look (entry points, ``ENTITYDB_ENTITY_PACKAGES``, the default),
  and ``_walk``: the entity modules of a package, found without importing it;
- ``_importing``: importing them, in an order that works when they import each other,
  and ``_import_errors``: the error that names the file and line when one fails;
- ``_result``: what was found (:class:`Discovery`, :class:`EntityInfo`), and ``_files``:
  how modules and their files are named in it;
- ``_undiscovered``: the ``*_entity.py`` files and mapped classes discovery missed;
- ``_app_metadata``: each app's own tables when several apps share a declarative base;
- ``_fsa_models``: Flask-SQLAlchemy-style models (``EntityDB(flask_sqlalchemy_models=True)``).
"""

from __future__ import annotations

from flask_entitydb.discovery._discover import discover_entities, report_warnings, under_flask_cli
from flask_entitydb.discovery._files import ENTITY_SUFFIX
from flask_entitydb.discovery._places import ENTRY_POINT_GROUP
from flask_entitydb.discovery._result import Discovery, EntityDiscoveryWarning, EntityInfo

__all__ = [
    "ENTITY_SUFFIX",
    "ENTRY_POINT_GROUP",
    "Discovery",
    "EntityDiscoveryWarning",
    "EntityInfo",
    "discover_entities",
    "report_warnings",
    "under_flask_cli",
]
