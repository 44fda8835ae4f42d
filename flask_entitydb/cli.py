"""The ``flask db`` command group."""

from __future__ import annotations

import click
from flask.cli import AppGroup

db_group = AppGroup("db", help="Database migrations (Alembic) and entity discovery.")


# ------------------------------------------------------------------------------------------
# Entity discovery: `flask db entities`. Keep this section at the end of the file.
# ------------------------------------------------------------------------------------------


@db_group.command("entities")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def entities_command(as_json: bool) -> None:
    """List the discovered entities: class, table, module file, source and column count."""
    import json

    from flask import current_app

    from .discovery import Discovery

    discovery: Discovery = current_app.extensions["entitydb"].discovery
    if as_json:
        entities = [
            {
                "class": info.name,
                "table": info.table,
                "module": info.module,
                "file": info.file,
                "source": info.source,
                "columns": info.columns,
            }
            for info in discovery.details
        ]
        click.echo(json.dumps({"entities": entities, "searched": list(discovery.searched)}))
        return
    if not discovery.details:
        click.echo(f"No entities found; searched: {', '.join(discovery.searched)}.")
        return
    rows = [("Class", "Table", "Module file", "Source", "Columns")]
    rows += [
        (info.name, info.table, info.file, info.source, str(info.columns))
        for info in discovery.details
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
