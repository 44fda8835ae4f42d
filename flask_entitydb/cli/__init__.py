"""The ``flask db`` command group.

Every migration command is a thin wrapper over :mod:`flask_entitydb.migrations`, with the
names and options of Flask-Migrate. Expected failures are one ``Error: ...`` line on
stderr and exit status 1; the Alembic machinery is only imported when a command runs.

The commands live in ``_scaffold`` (creating the migrations folder), ``_revisions``
(writing revisions), ``_squash`` (squashing them), ``_running`` (changing the database),
``_inspect`` (reading both), ``_lint`` and ``_entities``; they share ``_options``
(options, ``--bind``) and ``_output`` (printing the API's results).
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from flask_entitydb.cli import (
    _entities,
    _inspect,
    _lint,
    _revisions,
    _running,
    _scaffold,
    _squash,
)
from flask_entitydb.cli._options import directory_option, remember_group

__all__ = ["db_group"]


@click.group("db", cls=AppGroup)
@directory_option
@click.pass_context
def db_group(ctx: click.Context, directory: str | None) -> None:
    """Database migrations (Alembic) and entity discovery."""
    remember_group(ctx, directory)


for _command in (
    _scaffold.init_command,
    _scaffold.list_templates_command,
    _revisions.revision_command,
    _revisions.migrate_command,
    _revisions.edit_command,
    _revisions.merge_command,
    _running.upgrade_command,
    _running.downgrade_command,
    _running.stamp_command,
    _running.repair_command,
    _inspect.show_command,
    _inspect.history_command,
    _inspect.heads_command,
    _inspect.branches_command,
    _inspect.current_command,
    _inspect.check_command,
    _lint.lint_command,
    _squash.squash_command,
    _entities.entities_command,
):
    db_group.add_command(_command)
