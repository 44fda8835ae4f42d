"""The migrations self-test, :func:`check_migrations`: upgrade, downgrade, upgrade again,
then no difference between the database and the entities."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask_entitydb._testing.database import EntityDBTestDatabase, session_database_at
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

    from flask_entitydb.errors import MigrationError
    from flask_entitydb.migrations import check, downgrade, upgrade

    database, state = _test_database_of(app)
    if not os.path.isdir(state.settings.migrations_dir):
        fail(
            f"check_migrations: the app '{app.import_name}' has no migrations folder"
            f" '{state.settings.migrations_dir}'; create it with 'flask db init' and"
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
        steps: list[tuple[str, Callable[[], object]]] = [
            ("upgrade head", lambda: upgrade("head", squashed=False, app=app)),
            ("downgrade base", lambda: downgrade("base", app=app)),
            ("left-over tables", lambda: _no_entity_tables(state)),
            ("upgrade head again", lambda: upgrade("head", squashed=False, app=app)),
        ]
        for step, run in steps:
            try:
                run()
            except MigrationError as exc:
                fail_migration(
                    state.settings.url, database.worker, f"check_migrations: '{step}'", exc
                )
        database.prepared[key] = "migrations"
        try:
            result = check(app=app)
        except MigrationError as exc:
            fail_migration(state.settings.url, database.worker, "check_migrations: 'check'", exc)
    if not result.ok:
        details = "\n".join(result.describe())
        fail(f"check_migrations: the migrations do not match the entities.\n{details}")


def _no_entity_tables(state: EntityDBState) -> None:
    from sqlalchemy import inspect

    from flask_entitydb.errors import MigrationError

    existing = set(inspect(state.db.engine).get_table_names())
    left = sorted(existing & set(state.db.metadata.tables))
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
    with app.app_context():
        database.note_app(state)
    return database, state
