"""The ``flask db`` commands that change the database: ``upgrade``, ``downgrade``,
``stamp``, ``repair``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from flask_entitydb import migrations
from flask_entitydb.cli._options import (
    command,
    directory_option,
    folder,
    lock_timeout_option,
    lock_verbose_option,
    per_database,
    stacked,
    tag_option,
    x_option,
)
from flask_entitydb.cli._output import echo_applied, echo_run, echo_started, lock_echo

_OFFLINE = "Print the SQL instead of running it (offline)."


def _options(
    sql_help: str, option: Callable[[Any], Any], argument: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """The options of a command changing the database, with its own ``option`` and
    ``argument``."""
    return stacked(
        per_database,
        directory_option,
        click.option("--sql", is_flag=True, help=sql_help),
        tag_option,
        option,
        lock_timeout_option,
        argument,
        lock_verbose_option,
    )


def _apply(
    name: str,
    target: Any,
    lock_timeout: float,
    verbose: bool,
    directory: str | None,
    **options: Any,
) -> Any:
    """Call the API function ``name`` for ``target``, printing each revision as it starts
    (not for a stamp) and as it is applied; the revisions applied."""
    if name != "stamp":
        options["on_start"] = echo_started
    return getattr(migrations, name)(
        revision=target,
        lock_timeout=lock_timeout,
        on_apply=echo_applied,
        on_lock=lock_echo(verbose),
        directory=folder(directory),
        **options,
    )


def _echo_sql(name: str, target: Any, directory: str | None, **options: Any) -> None:
    """Print the SQL of the API function ``name`` for ``target`` (its ``_sql`` form)."""
    to_sql = getattr(migrations, f"{name}_sql")
    click.echo(to_sql(target, directory=folder(directory), **options), nl=False)


def _move_command(
    name: str,
    description: str,
    default: str,
    sql_help: str,
    done: str,
    context_settings: dict[str, Any] | None = None,
    own_option: Callable[[Any], Any] | None = None,
) -> click.Command:
    """``upgrade`` or ``downgrade``: call the API function of the same name (with --sql,
    print its SQL), then say what was ``done``; ``own_option`` is an option of that
    command only, passed on to the API function."""

    def move(
        directory: str | None,
        sql: bool,
        tag: str | None,
        x_args: tuple[str, ...],
        lock_timeout: float,
        verbose: bool,
        revision: str,
        **own: Any,
    ) -> None:
        if sql:
            _echo_sql(name, revision, directory, tag=tag, x_args=x_args)
            return
        applied = _apply(
            name, revision, lock_timeout, verbose, directory, tag=tag, x_args=x_args, **own
        )
        echo_run(applied, revision, done)

    move.__name__, move.__doc__ = f"{name}_command", description
    option = x_option if own_option is None else stacked(x_option, own_option)
    options = _options(sql_help, option, click.argument("revision", default=default))
    return command(name, context_settings)(options(move))


upgrade_command = _move_command(
    "upgrade",
    "Upgrade the database to REVISION (default: head).",
    "head",
    _OFFLINE,
    "Upgraded:",
    own_option=click.option(
        "--no-squashed",
        "squashed",
        flag_value=False,
        default=True,
        help="Upgrade a new database through every revision, not from a squashed one.",
    ),
)
downgrade_command = _move_command(
    "downgrade",
    "Downgrade the database to REVISION (default: -1, one back; 'base': all).",
    "-1",
    "Print the SQL instead of running it; needs FROM:TO.",
    "Downgraded:",
    context_settings={"ignore_unknown_options": True},
)


@command("stamp")
@_options(
    _OFFLINE,
    click.option("--purge", is_flag=True, help="Empty the version table first."),
    click.argument("revisions", nargs=-1),
)
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
        _echo_sql("stamp", targets, directory, tag=tag)
        return
    applied = _apply("stamp", targets, lock_timeout, verbose, directory, purge=purge, tag=tag)
    if not applied:
        click.echo(f"Nothing to do: the database is already at '{', '.join(targets)}'.")


@command("repair")
@stacked(
    per_database,
    directory_option,
    click.option(
        "--applied",
        is_flag=True,
        help="The revision's changes are all there: mark it applied (and stamp it).",
    ),
    click.option(
        "--checksums",
        is_flag=True,
        help="Accept the edited files of applied revisions (record their new checksums).",
    ),
    lock_timeout_option,
    click.argument("revision", required=False),
)
def repair_command(
    directory: str | None,
    applied: bool,
    checksums: bool,
    lock_timeout: float,
    revision: str | None,
) -> None:
    """Mark an interrupted or failed REVISION rolled back (it runs again) or --applied,
    after checking the database; default: the one unfinished revision."""
    result = migrations.repair(
        revision,
        applied=applied,
        checksums=checksums,
        lock_timeout=lock_timeout,
        directory=folder(directory),
    )
    click.echo(result.describe())
