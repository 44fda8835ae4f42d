"""``flask db entities``: the entities discovery found, and what it missed."""

from __future__ import annotations

import json

import click

from flask_entitydb.cli._options import command, current_app_object
from flask_entitydb.discovery._report import MODEL_SOURCE, entities_report
from flask_entitydb.migrations import _per_bind


@command("entities")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def entities_command(as_json: bool) -> None:
    """List the entities: class, table, module file, source and column count; also the
    mapped classes discovery did not find (imported by hand) and the '<name>_entity.py' files
    it did not import."""
    report = entities_report(current_app_object())
    if as_json:
        click.echo(json.dumps(report.to_json(_per_bind.table_bind_name)))
        return
    searched = ", ".join(report.searched)
    models = report.model_modules
    if not report.entities and models is not None:
        click.echo(f"No models found; {_model_modules_hint(models)}.")
    elif not report.entities:
        click.echo(f"No entities found; searched: {searched}.")
    else:
        rows = [("Class", "Table", "Module file", "Source", "Columns")]
        rows += [
            (info.name, info.table, info.file, info.source, str(info.columns))
            for info in report.entities
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            click.echo("  ".join(cells).rstrip())
    if models is not None and report.entities:
        click.echo(f"Models (source '{MODEL_SOURCE}'): {_model_modules_hint(models)}.")
    if report.not_discovered:
        click.echo(
            "Classes marked 'not discovered' are mapped but were imported by hand, not"
            " found by discovery; move their modules into a searched package or list it in"
            " 'ENTITYDB_ENTITY_PACKAGES'."
        )
    if report.undiscovered_modules:
        click.echo(f"Entity modules discovery did not import (searched: {searched}):")
        for module in report.undiscovered_modules:
            click.echo(f"  - {module.describe()}")
        click.echo(
            "List their package in 'ENTITYDB_ENTITY_PACKAGES', or rename a file that is"
            " not an entity module; 'flask db migrate' does not drop tables while they exist."
        )


def _model_modules_hint(modules: tuple[str, ...]) -> str:
    """Where Flask-SQLAlchemy models are found, for people."""
    listed = ", ".join(f"'{name}'" for name in modules) or "none"
    return (
        "Flask-SQLAlchemy models are found through the app's imports and the modules of"
        f" 'ENTITYDB_MODEL_MODULES' (now: {listed}); list there a module whose models are"
        " missing"
    )
