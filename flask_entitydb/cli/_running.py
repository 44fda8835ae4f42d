"""The ``flask db`` commands that change the database: ``upgrade``, ``downgrade``,
``stamp``."""

from __future__ import annotations

import click

from flask_entitydb import migrations
from flask_entitydb.cli._options import (
    command,
    directory_option,
    folder,
    lock_timeout_option,
    lock_verbose_option,
    per_bind,
    tag_option,
    x_option,
)
from flask_entitydb.cli._output import echo_applied, echo_run, lock_echo


@command("upgrade")
@per_bind
@directory_option
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (offline).")
@tag_option
@x_option
@lock_timeout_option
@click.argument("revision", default="head")
@lock_verbose_option
def upgrade_command(
    directory: str | None,
    sql: bool,
    tag: str | None,
    x_args: tuple[str, ...],
    lock_timeout: float,
    verbose: bool,
    revision: str,
) -> None:
    """Upgrade the database to REVISION (default: head)."""
    if sql:
        click.echo(
            migrations.upgrade_sql(revision, tag=tag, x_args=x_args, directory=folder(directory)),
            nl=False,
        )
        return
    applied = migrations.upgrade(
        revision,
        tag=tag,
        x_args=x_args,
        lock_timeout=lock_timeout,
        on_apply=echo_applied,
        on_lock=lock_echo(verbose),
        directory=folder(directory),
    )
    echo_run(applied, revision, "Upgraded:")


@command("downgrade", context_settings={"ignore_unknown_options": True})
@per_bind
@directory_option
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it; needs FROM:TO.")
@tag_option
@x_option
@lock_timeout_option
@click.argument("revision", default="-1")
@lock_verbose_option
def downgrade_command(
    directory: str | None,
    sql: bool,
    tag: str | None,
    x_args: tuple[str, ...],
    lock_timeout: float,
    verbose: bool,
    revision: str,
) -> None:
    """Downgrade the database to REVISION (default: -1, one back; 'base': all)."""
    if sql:
        click.echo(
            migrations.downgrade_sql(revision, tag=tag, x_args=x_args, directory=folder(directory)),
            nl=False,
        )
        return
    applied = migrations.downgrade(
        revision,
        tag=tag,
        x_args=x_args,
        lock_timeout=lock_timeout,
        on_apply=echo_applied,
        on_lock=lock_echo(verbose),
        directory=folder(directory),
    )
    echo_run(applied, revision, "Downgraded:")


@command("stamp")
@per_bind
@directory_option
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (offline).")
@tag_option
@click.option("--purge", is_flag=True, help="Empty the version table first.")
@lock_timeout_option
@click.argument("revisions", nargs=-1)
@lock_verbose_option
def stamp_command(
    directory: str | None,
    sql: bool,
    tag: str | None,
    purge: bool,
    lock_timeout: float,
    verbose: bool,
    revisions: tuple[str, ...],
) -> None:
    """Set the database's revision to REVISIONS (default: head) without migrating."""
    targets = list(revisions) or ["head"]
    if sql:
        click.echo(migrations.stamp_sql(targets, tag=tag, directory=folder(directory)), nl=False)
        return
    applied = migrations.stamp(
        targets,
        purge=purge,
        tag=tag,
        lock_timeout=lock_timeout,
        on_apply=echo_applied,
        on_lock=lock_echo(verbose),
        directory=folder(directory),
    )
    if not applied:
        click.echo(f"Nothing to do: the database is already at '{', '.join(targets)}'.")
