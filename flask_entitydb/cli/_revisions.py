"""The ``flask db`` commands that write revisions: ``revision``, ``migrate``, ``edit``,
``merge``."""

from __future__ import annotations

from typing import Any

import click

from flask_entitydb import migrations
from flask_entitydb.cli._lint import lint_new_revision
from flask_entitydb.cli._options import (
    allow_drop_option,
    command,
    directory_option,
    drop_permission,
    folder,
    group_command,
    name_database,
    per_bind,
    per_database,
    several_binds,
    stacked,
    verbose_option,
    x_option,
)
from flask_entitydb.cli._output import (
    alembic_log_lines,
    echo_new_revision,
    echo_no_changes,
    warn_sqlite_enums,
    warn_undiscovered,
)
from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations import _per_bind

_message = "Revision message."
_branch_label_option = click.option(
    "--branch-label", default=None, help="Label for the new branch."
)
_rev_id_option = click.option(
    "--rev-id", default=None, help="Revision id to use instead of a generated one."
)
# where the new revision goes: revision's and migrate's options
_placement_options = stacked(
    click.option("--head", default="head", show_default=True, help="Revision to build upon."),
    click.option("--splice", is_flag=True, help="Allow a non-head revision as the --head."),
    _branch_label_option,
    click.option("--version-path", default=None, help="Version folder to write into."),
    _rev_id_option,
)


@command("revision")
@per_bind
@directory_option
@click.option("-m", "--message", default=None, help=_message)
@click.option("--autogenerate", is_flag=True, help="Fill the revision with the entities' changes.")
@click.option("--sql", is_flag=True, help="Offline mode (needs revision_environment).")
@_placement_options
@click.option("--depends-on", multiple=True, help="Revision this one depends on; repeatable.")
@click.option(
    "--allow-empty",
    is_flag=True,
    help="With --autogenerate, write a revision even when nothing changed.",
)
@verbose_option
@allow_drop_option
def revision_command(
    directory: str | None,
    autogenerate: bool,
    depends_on: tuple[str, ...],
    verbose: bool,
    allow_drop: bool,
    **options: Any,
) -> None:
    """Write a new revision file (empty unless --autogenerate)."""
    if autogenerate:
        name_database()
    with alembic_log_lines(autogenerate and not verbose):
        new = migrations.revision(
            autogenerate=autogenerate,
            depends_on=list(depends_on) or None,
            allow_drop=drop_permission(allow_drop),
            directory=folder(directory),
            **options,
        )
    if autogenerate:
        warn_undiscovered()  # after: a refusal names the files itself
    if new is None:
        echo_no_changes()
        return
    echo_new_revision(new, verbose)


@command("migrate")
@per_database
@directory_option
@click.option("-m", "--message", default=None, help="Revision message (default: the changes).")
@_placement_options
@click.option("--allow-empty", is_flag=True, help="Write a revision even when nothing changed.")
@allow_drop_option
@x_option
@verbose_option
def migrate_command(directory: str | None, allow_drop: bool, verbose: bool, **options: Any) -> None:
    """Autogenerate a revision from the entities (revision --autogenerate).

    A revision that drops a table is written only with --allow-drop or when confirmed on
    a terminal, and never while an '<name>_entity.py' file of the project was not discovered.
    """
    # imports Alembic: only when the command runs
    from flask_entitydb.migrations._lint.memo import verdicts_kept
    from flask_entitydb.migrations._scaffold.folder import revisions_kept

    # the revision files are loaded once, and the server's verdicts kept, for both
    with revisions_kept(), verdicts_kept():
        with alembic_log_lines(not verbose):
            new = migrations.migrate(
                allow_drop=drop_permission(allow_drop), directory=folder(directory), **options
            )
        warn_undiscovered()  # after: a refusal names the files itself
        warn_sqlite_enums()
        if new is None:
            echo_no_changes()
            return
        echo_new_revision(new, verbose)
        lint_new_revision(new.revision, folder(directory))


@command("edit")
@directory_option
@click.option(
    "--bind",
    "bind_key",
    default=None,
    metavar="KEY",
    help="The bind whose revision it is (default: the one bind holding REVISION).",
)
@click.argument("revision", default="head")
def edit_command(directory: str | None, bind_key: str | None, revision: str) -> None:
    """Open a revision file in $EDITOR."""
    _per_bind.edit(revision, bind_key, directory=folder(directory), command=group_command())


@command("merge")
@per_bind
@directory_option
@click.option("-m", "--message", default=None, help=_message)
@_branch_label_option
@_rev_id_option
@click.argument("revisions", nargs=-1)
def merge_command(
    directory: str | None,
    message: str | None,
    branch_label: str | None,
    rev_id: str | None,
    revisions: tuple[str, ...],
) -> None:
    """Write a revision merging REVISIONS (default: all heads); with several binds, in
    each bind that has several heads (REVISIONS need --bind)."""
    several = several_binds()
    if several and revisions:
        raise MigrationError(
            "Revisions to merge belong to one bind; name it with"
            f" '{group_command('merge --bind KEY ' + ' '.join(revisions))}'."
        )
    heads = [] if revisions else migrations.heads(directory=folder(directory))
    if not revisions and len(heads) < 2:
        if several:
            name = _per_bind.selected_target().name
            click.echo(f"Nothing to merge in '{name}': it has one head.")
        else:  # Alembic would write an empty revision after it
            what = f"one head ('{heads[0].revision}')" if heads else "no revision"
            click.echo(f"Nothing to merge: the migrations have {what}; nothing written.")
        return
    new = migrations.merge(
        revisions=list(revisions) or "heads",
        message=message,
        branch_label=branch_label,
        rev_id=rev_id,
        directory=folder(directory),
    )
    echo_new_revision(new)
