"""The ``flask db`` commands that read revisions and the database: ``show``,
``history``, ``heads``, ``branches``, ``current``, ``check``."""

from __future__ import annotations

import click

from flask_entitydb import migrations
from flask_entitydb.cli._options import (
    command,
    directory_option,
    folder,
    group_command,
    per_bind,
    per_database,
    x_option,
)
from flask_entitydb.cli._output import echo_lint, echo_revisions, warn_sqlite_enums
from flask_entitydb.migrations import _per_bind


@command("show")
@per_bind
@directory_option
@click.argument("revision", default="head")
def show_command(directory: str | None, revision: str) -> None:
    """Show REVISION (default: head; 'current': the database's)."""
    echo_revisions(migrations.show(revision=revision, directory=folder(directory)), verbose=True)


@command("history")
@per_bind
@directory_option
@click.option("-r", "--rev-range", default=None, help="Range, e.g. 'base:current'.")
@click.option("-v", "--verbose", is_flag=True, help="Show every detail.")
@click.option("-i", "--indicate-current", is_flag=True, help="Mark the database's revision.")
def history_command(
    directory: str | None, rev_range: str | None, verbose: bool, indicate_current: bool
) -> None:
    """List the revisions, newest first."""
    infos = migrations.history(
        rev_range=rev_range,
        indicate_current=indicate_current,
        journal=verbose,
        directory=folder(directory),
    )
    echo_revisions(infos, verbose)


@command("heads")
@per_bind
@directory_option
@click.option("-v", "--verbose", is_flag=True, help="Show every detail.")
@click.option("--resolve-dependencies", is_flag=True, help="Treat dependencies as down revisions.")
def heads_command(directory: str | None, verbose: bool, resolve_dependencies: bool) -> None:
    """Show the head revisions."""
    infos = migrations.heads(resolve_dependencies=resolve_dependencies, directory=folder(directory))
    echo_revisions(infos, verbose)


@command("branches")
@per_bind
@directory_option
@click.option("-v", "--verbose", is_flag=True, help="Show every detail.")
def branches_command(directory: str | None, verbose: bool) -> None:
    """Show the branch points."""
    for info in migrations.branches(directory=folder(directory)):
        click.echo(info.details if verbose else info.line)
        for child in info.next_revisions:
            click.echo(f"{' ' * len(info.revision)} -> {child}")


@command("current")
@per_database
@directory_option
@click.option("-v", "--verbose", is_flag=True, help="Show every detail.")
def current_command(directory: str | None, verbose: bool) -> None:
    """Show the database's revision."""
    infos = migrations.current(journal=verbose, directory=folder(directory))
    if verbose:
        click.echo(f"Current revision(s) for {_per_bind.selected_target().url}:")
    if not infos:  # stdout stays empty, as with Flask-Migrate and Alembic
        click.echo(
            f"The database has no revision applied ('{group_command('upgrade')}' applies them).",
            err=True,
        )
    echo_revisions(infos, verbose)


@command("check")
@per_database
@directory_option
@x_option
@click.option("--lint", is_flag=True, help="Also fail on 'flask db lint --all' hazards.")
@click.pass_context
def check_command(
    ctx: click.Context, directory: str | None, x_args: tuple[str, ...], lint: bool
) -> None:
    """Exit 0 when the database is at head and matches the entities, else 1 with the
    differences (a CI gate)."""
    result = migrations.check(x_args=x_args, directory=folder(directory))
    if not result.unapplied:  # the entities were compared
        warn_sqlite_enums()
    for line in result.describe():
        click.echo(line)
    linted = migrations.lint(all_revisions=True, directory=folder(directory)) if lint else None
    if linted is not None:
        echo_lint(linted)
    if not result.ok or (linted is not None and not linted.ok):
        ctx.exit(1)
