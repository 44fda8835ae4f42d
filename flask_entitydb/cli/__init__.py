"""The ``flask db`` command group.

Every migration command is a thin wrapper over :mod:`flask_entitydb.migrations`, with the
names and options of Flask-Migrate. Expected failures are one ``Error: ...`` line on
stderr and exit status 1; the Alembic machinery is only imported when a command runs.

The commands live in ``_scaffold`` (creating the migrations folder), ``_revisions``
(writing revisions), ``_squash`` (squashing them), ``_running`` (changing the database),
``_inspect`` (reading both), ``_lint`` and ``_entities``; they share ``_options``
(options, ``--bind``) and ``_output`` (printing the API's results). A command's module is
imported when the command is looked up (``flask db current`` loads ``_inspect`` only;
``flask db --help`` loads them all), as click's lazily loaded groups do.
"""

from __future__ import annotations

from importlib import import_module

import click
from flask.cli import AppGroup

from flask_entitydb.cli._options import directory_option, remember_group

__all__ = ["db_group"]

COMMANDS = {
    "init": ("_scaffold", "init_command"),
    "list-templates": ("_scaffold", "list_templates_command"),
    "revision": ("_revisions", "revision_command"),
    "migrate": ("_revisions", "migrate_command"),
    "edit": ("_revisions", "edit_command"),
    "merge": ("_revisions", "merge_command"),
    "upgrade": ("_running", "upgrade_command"),
    "downgrade": ("_running", "downgrade_command"),
    "stamp": ("_running", "stamp_command"),
    "repair": ("_running", "repair_command"),
    "show": ("_inspect", "show_command"),
    "history": ("_inspect", "history_command"),
    "heads": ("_inspect", "heads_command"),
    "branches": ("_inspect", "branches_command"),
    "current": ("_inspect", "current_command"),
    "check": ("_inspect", "check_command"),
    "lint": ("_lint", "lint_command"),
    "squash": ("_squash", "squash_command"),
    "entities": ("_entities", "entities_command"),
}
"""Each command's name: its module in this package and the command object's name there."""


class _LazyGroup(AppGroup):
    """An :class:`~flask.cli.AppGroup` whose commands (:data:`COMMANDS`) are imported when
    they are looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            self.add_command(getattr(import_module(f"{__name__}.{module}"), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group("db", cls=_LazyGroup)
@directory_option
@click.pass_context
def db_group(ctx: click.Context, directory: str | None) -> None:
    """Database migrations (Alembic) and entity discovery."""
    remember_group(ctx, directory)
