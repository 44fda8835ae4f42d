"""The hooks ``run_migrations()`` gives Alembic, and how they are combined with the ones
``env.py`` passes: which tables autogenerate looks at (``ENTITYDB_EXCLUDE_TABLES``, the
version and lease tables left out), and chaining of rendering and directive hooks.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext

from flask_entitydb._settings.model import Settings
from flask_entitydb.migrations._autogenerate.compare import compare_server_default, compare_type
from flask_entitydb.migrations._autogenerate.cycles import deferred_foreign_keys
from flask_entitydb.migrations._autogenerate.online_blocks import online_algorithms
from flask_entitydb.migrations._autogenerate.portable import portable_types, render_item
from flask_entitydb.migrations._autogenerate.safe_forms import concurrent_indexes
from flask_entitydb.migrations._locks import LEASE_TABLE

VERSION_TABLE = "alembic_version"
"""Alembic's default version table."""


def hook_options(
    settings: Settings, metadata: sa.MetaData, options: dict[str, Any]
) -> dict[str, Any]:
    """The autogenerate options and hooks of ``context.configure()``: flask-entitydb's,
    combined with the hooks in ``options`` (taken out of it; the caller's other options
    override these)."""
    return {
        "target_metadata": metadata,
        "compare_type": compare_type if settings.compare_type else False,
        "compare_server_default": (
            compare_server_default if settings.compare_server_default else False
        ),
        "include_name": combine(
            excluding_names(
                settings.exclude_tables,
                options.get("version_table", VERSION_TABLE),
                settings.migration_journal_table,
            ),
            options.pop("include_name", None),
        ),
        "include_object": combine(
            excluding_objects(settings.exclude_tables), options.pop("include_object", None)
        ),
        "render_item": first_rendering(render_item, options.pop("render_item", None)),
        "process_revision_directives": chain(
            portable_types(metadata),
            deferred_foreign_keys,
            concurrent_indexes,
            online_algorithms,
            options.pop("process_revision_directives", None),
        ),
    }


def as_list(value: Any) -> list[Any]:
    """A hook option's value as a list of hooks (one hook, several, or none)."""
    if value is None:
        return []
    if callable(value):
        return [value]
    return list(value)


def chain(*hooks: Callable[..., None] | None) -> Callable[..., None]:
    """One ``process_revision_directives`` hook running ``hooks`` in order."""
    present = [hook for hook in hooks if hook is not None]

    def run(context: MigrationContext, revision: Any, directives: list[Any]) -> None:
        for hook in present:
            hook(context, revision, directives)

    return run


def first_rendering(
    ours: Callable[..., Any], theirs: Callable[..., Any] | None
) -> Callable[..., Any]:
    """A ``render_item`` hook: the caller's rendering when it has one, else ours."""
    if theirs is None:
        return ours

    def render(type_: str, obj: Any, autogen_context: Any) -> Any:
        rendered = theirs(type_, obj, autogen_context)
        return ours(type_, obj, autogen_context) if rendered is False else rendered

    return render


def combine(ours: Callable[..., bool], theirs: Callable[..., bool] | None) -> Callable[..., bool]:
    """A filter hook that includes what both ``ours`` and ``theirs`` include."""
    if theirs is None:
        return ours

    def both(*args: Any) -> bool:
        return ours(*args) and theirs(*args)

    return both


def _excluded(name: str | None, schema: str | None, patterns: Sequence[str]) -> bool:
    if name is None:
        return False
    names = [name] if schema is None else [name, f"{schema}.{name}"]
    return any(fnmatch.fnmatchcase(n, pattern) for n in names for pattern in patterns)


def excluding_names(
    patterns: Sequence[str], version_table: str, journal_table: str = ""
) -> Callable[..., bool]:
    """Alembic ``include_name`` hook: leave excluded tables, the version table, the lease
    and the journal unreflected."""

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ != "table":
            return True
        if name in (version_table, LEASE_TABLE, journal_table):
            return False
        return not _excluded(name, parent_names.get("schema_name"), patterns)

    return include_name


def excluding_objects(patterns: Sequence[str]) -> Callable[..., bool]:
    """Alembic ``include_object`` hook: leave excluded tables of the metadata alone."""

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ != "table":
            return True
        return not _excluded(name, getattr(obj, "schema", None), patterns)

    return include_object
