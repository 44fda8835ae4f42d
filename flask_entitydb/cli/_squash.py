"""``flask db squash``."""

from __future__ import annotations

import os

import click

from flask_entitydb import migrations
from flask_entitydb.cli._options import command, directory_option, folder, per_bind


@command("squash")
@per_bind
@directory_option
@click.option(
    "--to",
    "to",
    default=None,
    metavar="REVISION",
    help="Last revision to squash (default: the head).",
)
@click.option("-m", "--message", default=None, help="The squashed revision's message.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Run the equality proof and print the squashed revision; write nothing.",
)
@click.pass_context
def squash_command(
    ctx: click.Context,
    directory: str | None,
    to: str | None,
    message: str | None,
    dry_run: bool,
) -> None:
    """Squash the history up to --to REVISION (default: the head) into one revision that
    new databases upgrade through; databases partway keep the revisions. Written only when
    its schema equals the history's on scratch databases; exit 1 (and nothing written) when
    it does not."""
    result = migrations.squash(to, message=message, dry_run=dry_run, directory=folder(directory))
    count = len(result.replaces)
    if not result.ok:
        click.echo(
            f"The squashed revision would not equal the {count} revision(s) up to"
            f" '{result.revision}' on {result.dialect}; nothing was written. Differences:",
            err=True,
        )
        for difference in result.differences:
            click.echo(f"  - {difference}", err=True)
        ctx.exit(1)
    if dry_run:
        click.echo(result.source)
        click.echo(
            f"Dry run: the squashed revision equals the {count} revision(s) up to"
            f" '{result.revision}' on {result.dialect}; it would be written to"
            f" {_shown(result.path)}."
        )
        return
    click.echo(
        f"Squashed {count} revision(s) ({result.replaces[0]} .. {result.revision}) into"
        f" {_shown(result.path)}; its schema equals theirs on {result.dialect}."
    )
    click.echo(
        "New databases upgrade through it; databases at one of those revisions upgrade"
        " through the revisions, which stay."
    )


def _shown(path: str) -> str:
    """``path``, relative to the working directory when below it."""
    return os.path.relpath(path) if path.startswith(os.getcwd() + os.sep) else path
