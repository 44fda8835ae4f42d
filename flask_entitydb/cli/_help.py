"""Whether the ``flask`` command is only showing help: then a configuration error must
not hide the ``db`` group or its commands' help (``--help`` always works)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

__all__ = ["help_requested", "warn_help_only"]


def _asks_for_help(args: Sequence[str]) -> bool:
    """Whether ``flask <args>`` shows help: ``--help`` before any ``--``."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "--help":
            return True
    return False


def help_requested() -> bool:
    """Whether the app is being loaded by the ``flask`` command only to show help (or to
    complete a command line)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    from flask.cli import FlaskGroup

    root = ctx.find_root()
    if not isinstance(root.command, FlaskGroup):
        return False
    return root.resilient_parsing or _asks_for_help(sys.argv[1:])


def warn_help_only(error: click.ClickException) -> None:
    """Name the configuration error in one line above the help."""
    click.secho(
        f"Warning (only help is shown until this is fixed): {error.format_message()}",
        fg="yellow",
        err=True,
    )
