"""The ``flask db`` commands that create the migrations folder: ``init``,
``list-templates``."""

from __future__ import annotations

import os
import shlex

import click

from flask_entitydb import migrations
from flask_entitydb.cli._options import (
    command,
    directory_option,
    folder,
    group_command,
    per_bind,
    several_binds,
)
from flask_entitydb.migrations import _per_bind


@command("init")
@per_bind
@directory_option
@click.option("--package", is_flag=True, help="Write __init__.py files into the folders.")
@click.option(
    "--replace-env",
    is_flag=True,
    help="Only replace the env.py of an existing folder with flask-entitydb's (to switch"
    " from Flask-Migrate or a hand-made env.py; revisions are kept).",
)
@click.option(
    "-t",
    "--template",
    default=None,
    metavar="NAME|FOLDER",
    help="Template to write (default 'entitydb'; see 'list-templates'), or a folder of your own.",
)
def init_command(
    directory: str | None, package: bool, replace_env: bool, template: str | None
) -> None:
    """Create the migrations folder."""
    where = folder(directory)
    target = _per_bind.selected_target()
    if target.key is not None or several_binds():
        existing = _per_bind.existing_folder(where)
        if not replace_env and existing:
            click.echo(f"Kept the existing migrations folder '{existing}' ({target.name}).")
            return
    if replace_env:
        done = migrations.replace_env_file(where)
        kept = f"; the old one is kept as '{done.backup}'" if done.backup else ""
        click.echo(f"Replaced '{done.path}' with flask-entitydb's env.py{kept}.")
        if done.ini_added:
            ini = os.path.join(os.path.dirname(done.path), "alembic.ini")
            added = ", ".join(f"'{name}'" for name in done.ini_added)
            click.echo(f"Added {added} to '{ini}', so Alembic can also run directly.")
        if done.removed:
            click.secho(
                "The old env.py had more than Flask-Migrate's stock env.py; the new one does"
                " not carry this over (compare with the backup):",
                fg="yellow",
                err=True,
            )
            for item in done.removed:
                click.echo(f"  - {item}", err=True)
        return
    path = migrations.init(where, package=package, template=template)
    db = group_command(f"-d {shlex.quote(where)}" if where else "")
    click.echo(
        f"Created the migrations folder '{path}'; next, run '{db} migrate -m"
        f" \"first revision\"' and '{db} upgrade'."
    )


@command("list-templates")
def list_templates_command() -> None:
    """List the templates 'init --template' can write."""
    click.echo("Available templates:\n")
    for name, description in migrations.list_templates():
        click.echo(f"{name} - {description}")
    click.echo(
        "\nTemplates are used via the 'init' command, e.g.:\n\n"
        f"  {group_command('init --template entitydb')}\n\n"
        "A folder of your own (env.py calling run_migrations(), script.py.mako,"
        " alembic.ini.mako) works too: --template ./my-template"
    )
