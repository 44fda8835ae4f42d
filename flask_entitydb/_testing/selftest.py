"""The migrations self-test, :func:`check_migrations`: upgrade, downgrade, upgrade again,
then no difference between the database and the entities."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from fnmatch import fnmatch
from typing import TYPE_CHECKING

from flask_entitydb._testing.database import (
    EntityDBTestDatabase,
    bind_engines,
    session_database_at,
)
from flask_entitydb._testing.failures import fail, fail_migration

if TYPE_CHECKING:
    from flask import Flask

    from flask_entitydb.state import EntityDBState


def check_migrations(app: Flask) -> None:
    """Test the app's migrations: upgrade to head, downgrade to base, upgrade again, and
    check that the database then matches the entities (no change without a revision).

    Add it to your suite as one test::

        from flask_entitydb.pytest_plugin import check_migrations

        def test_migrations(app):
            check_migrations(app)

    Downgrading to base drops every table, so it only runs against the test database of
    this pytest session (the ``entitydb_url`` fixture); it leaves the database at head.
    Fails the test with a readable message naming the step or the differences.
    """
    from flask import current_app

    database, state = _test_database_of(app)
    keys: tuple[str | None, ...] = (None, *state.settings.binds)
    for key in keys:
        folder = _folder(state, key)
        if not os.path.isdir(folder):
            which = "" if key is None else f" for the bind '{key}'"
            fail(
                f"check_migrations: the app '{app.import_name}' has no migrations"
                f" folder{which} '{folder}'; create it with 'flask db init' and"
                " 'flask db migrate'."
            )
    key = state.settings.migrations_dir
    if current_app and current_app._get_current_object() is app:  # type: ignore[attr-defined]
        state.db.session.remove()  # a session left open would block DROP TABLE on MySQL
    with app.app_context():
        if database.prepared.get(key) == "create_all":
            # tables made by create_all have no revision: start from an empty schema
            state.db.drop_all()
            database.prepared.pop(key)
        with _without_test_entities(app, state, database.test_files):
            failures = [_round_trip(app, state, database, bind) for bind in keys]
        database.prepared[key] = "migrations"
        database.schema_changed()
        database.recount_kept()
    details = "\n".join(line for lines in failures for line in lines)
    if details:
        fail(f"check_migrations: the migrations do not match the entities.\n{details}")


@contextmanager
def _without_test_entities(
    app: Flask, state: EntityDBState, patterns: tuple[str, ...]
) -> Iterator[None]:
    """Leave the tables of entities defined in test modules out of the comparison
    (as if listed in ``ENTITYDB_EXCLUDE_TABLES``) while the block runs: they have no
    revision on purpose, and would otherwise fail the check in a full run."""
    from flask_entitydb.state import set_state

    names = test_entity_tables(state, patterns)
    if not names:
        yield
        return
    excluded = (*state.settings.exclude_tables, *names)
    set_state(app, replace(state, settings=replace(state.settings, exclude_tables=excluded)))
    try:
        yield
    finally:
        set_state(app, state)


def test_entity_tables(state: EntityDBState, patterns: tuple[str, ...]) -> tuple[str, ...]:
    """The tables of the entities whose module is a test module (its file name matches
    one of ``patterns``, pytest's ``python_files`` and ``conftest.py``)."""
    found = set()
    for mapper in state.db.base.registry.mappers:
        module = sys.modules.get(mapper.class_.__module__)
        name = os.path.basename(getattr(module, "__file__", None) or "")
        table = mapper.local_table
        if name and any(fnmatch(name, pattern) for pattern in patterns):
            found.add(str(getattr(table, "name", "")))
    return tuple(sorted(found - {""}))


def _folder(state: EntityDBState, key: str | None) -> str:
    from flask_entitydb.migrations._folders import bind_directory

    return bind_directory(state.settings.migrations_dir, key)


def _round_trip(
    app: Flask, state: EntityDBState, database: EntityDBTestDatabase, key: str | None
) -> list[str]:
    """Upgrade, downgrade, upgrade and check the bind ``key``; the differences found."""
    from flask_entitydb.errors import MigrationError
    from flask_entitydb.migrations import check, downgrade, upgrade
    from flask_entitydb.migrations.binds import using_bind
    from flask_entitydb.state import get_state

    state = get_state(app)  # with the test entities' tables excluded
    where = "" if key is None else f" (bind '{key}')"
    target = database if key is None else database.binds[key]
    steps: list[tuple[str, Callable[[], object]]] = [
        ("upgrade head", lambda: upgrade(revision="head", squashed=False, app=app)),
        ("downgrade base", lambda: downgrade(revision="base", app=app)),
        ("left-over tables", lambda: _no_entity_tables(state, key)),
        ("upgrade head again", lambda: upgrade(revision="head", squashed=False, app=app)),
    ]
    with using_bind(key):
        for step, run in steps:
            try:
                run()
            except MigrationError as exc:
                fail_migration(
                    target.url, database.worker, f"check_migrations: '{step}'{where}", exc
                )
        try:
            result = check(app=app)
        except MigrationError as exc:
            fail_migration(target.url, database.worker, f"check_migrations: 'check'{where}", exc)
    if result.ok:
        return []
    lines = list(result.describe())
    return [f"[{key}]", *lines] if key is not None else lines


def _no_entity_tables(state: EntityDBState, key: str | None) -> None:
    from sqlalchemy import inspect

    from flask_entitydb._engine.routes import tables_of
    from flask_entitydb.errors import MigrationError

    engine = state.db.engine if key is None else bind_engines(state)[key]
    existing = set(inspect(engine).get_table_names())
    ours = {table.name for table in tables_of(state.db.metadata, key)}
    left = sorted(existing & ours - set(state.settings.exclude_tables))
    if left:
        names = ", ".join(f"'{name}'" for name in left)
        raise MigrationError(
            f"after 'downgrade base' the tables {names} still exist; a revision's"
            " downgrade() does not drop what its upgrade() creates."
        )


def _test_database_of(app: Flask) -> tuple[EntityDBTestDatabase, EntityDBState]:
    from flask_entitydb._settings.masking import mask_url
    from flask_entitydb.state import get_state

    state = get_state(app, optional=True)
    if state is None:
        fail(
            f"check_migrations: the app '{app.import_name}' does not use EntityDB; set it"
            " up with EntityDB(app) or db.init_app(app)."
        )
    database = session_database_at(state.settings.url)
    if database is None:
        fail(
            f"check_migrations drops every table, so it only runs against this test"
            f" session's database, and the app uses '{mask_url(state.settings.url)}'; build"
            " the app with app.config['DB_CONNECTION_STRING'] = entitydb_url (the"
            " 'entitydb_url' fixture)."
        )
    database.state_of(app)  # every bind on a test database of this run, or the test fails
    with app.app_context():
        database.note_app(state)
    return database, state
