"""``flask db lint``, and the lint of the revision ``flask db migrate`` writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from flask_entitydb import migrations
from flask_entitydb.cli._options import (
    command,
    directory_option,
    folder,
    per_bind_json,
    report_json,
)
from flask_entitydb.cli._output import echo_lint
from flask_entitydb.errors import MigrationError


def _document(results: Sequence[Any]) -> object:
    """One JSON document for the binds' lint results."""
    # imports Alembic: only when the command runs
    from flask_entitydb.migrations._lint.results import json_report

    return json_report(results)


def lint_new_revision(revision: str, directory: str | None) -> None:
    """Print the hazards of the revision ``migrate`` just wrote (it stays written)."""
    try:
        result = migrations.lint(revision, directory=directory)
    except MigrationError as error:
        click.secho(f"Warning: the new revision was not linted: {error}", fg="yellow", err=True)
        return
    if result.findings or result.notes or any(v.rebuilds for v in result.online):
        echo_lint(result)
    if not result.ok:
        click.secho(
            "Warning: the new revision has hazards for a running app (above); apply the"
            " recipes, or mark reviewed ones '# entitydb: allow <rule>'.",
            fg="yellow",
            err=True,
        )


@command("lint")
@per_bind_json(_document)
@directory_option
@click.option("--all", "all_revisions", is_flag=True, help="Lint every revision.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for CI).")
@click.argument("rev_range", required=False)
@click.pass_context
def lint_command(
    ctx: click.Context,
    directory: str | None,
    all_revisions: bool,
    as_json: bool,
    rev_range: str | None,
) -> None:
    """Report what REV_RANGE (default: the revisions not applied; START:END or one id)
    would do to a running app: locks, table copies, old code that breaks; exit 1 on any."""
    result = migrations.lint(rev_range, all_revisions=all_revisions, directory=folder(directory))
    if as_json:
        report_json(result)
    else:
        echo_lint(result)
    if not result.ok:
        ctx.exit(1)
