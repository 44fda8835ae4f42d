"""The options the ``flask db`` commands share, and ``--bind``: the decorator running a
command for each bind."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from flask.cli import with_appcontext

from flask_entitydb._engine.session import current_app_object
from flask_entitydb.migrations import _per_bind
from flask_entitydb.migrations._per_bind import BindTarget

__all__ = [
    "allow_drop_option",
    "command",
    "current_app_object",
    "directory_option",
    "drop_permission",
    "folder",
    "group_command",
    "lock_timeout_option",
    "lock_verbose_option",
    "name_database",
    "per_bind",
    "per_bind_json",
    "per_database",
    "remember_group",
    "report_json",
    "several_binds",
    "stacked",
    "tag_option",
    "verbose_option",
    "x_option",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_DIRECTORY_KEY = "flask_entitydb.migrations_directory"
_GROUP_NAME_KEY = "flask_entitydb.group_name"
_SEVERAL_KEY = "flask_entitydb.several_binds"
_JSON_KEY = "flask_entitydb.json_reports"


def command(
    name: str, context_settings: dict[str, Any] | None = None
) -> Callable[[Callable[..., Any]], click.Command]:
    """A command of the group, run inside the app context (as ``AppGroup.command``)."""

    def decorator(function: Callable[..., Any]) -> click.Command:
        return click.command(name, context_settings=context_settings)(with_appcontext(function))

    return decorator


# -- the group's state: its -d and its name ------------------------------------------------


def remember_group(ctx: click.Context, directory: str | None) -> None:
    """Keep the group's ``-d`` and the name it is called by, for its commands."""
    ctx.meta[_DIRECTORY_KEY] = directory
    ctx.meta[_GROUP_NAME_KEY] = ctx.info_name


def folder(directory: str | None) -> str | None:
    """The command's ``-d``, else the group's ``-d``, else ``None`` (the app's folder)."""
    if directory:
        return directory
    value = click.get_current_context().meta.get(_DIRECTORY_KEY)
    return str(value) if value else None


def group_command(arguments: str = "") -> str:
    """``flask <group> <arguments>`` with the group's real name (``command_name``)."""
    name = click.get_current_context().meta.get(_GROUP_NAME_KEY) or "db"
    return " ".join(part for part in ("flask", name, arguments) if part)


# -- options -------------------------------------------------------------------------------


def stacked(*decorators: Callable[[_F], _F]) -> Callable[[_F], _F]:
    """Several decorators as one, applied as if written one above the other in this order
    (so the options are listed in this order)."""

    def decorate(function: _F) -> _F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return decorate


directory_option = click.option(
    "-d",
    "--directory",
    default=None,
    metavar="FOLDER",
    help="Migrations folder (default: 'migrations' in the app's package, or"
    " ENTITYDB_MIGRATIONS_DIR).",
)
x_option = click.option(
    "-x",
    "x_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra argument for env.py (context.get_x_argument()); repeatable.",
)
lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds to wait for another process's migration to finish.",
)
lock_verbose_option = click.option(
    "-v", "--verbose", is_flag=True, help="Say which migration lock was taken, and why."
)
tag_option = click.option("--tag", default=None, help="Arbitrary tag for custom env.py scripts.")
verbose_option = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Describe the changes in words instead of Alembic's log lines.",
)
allow_drop_option = click.option(
    "--allow-drop",
    is_flag=True,
    help="Write a revision that drops tables (deleting their data) without asking.",
)


def drop_permission(allow_drop: bool) -> bool | Callable[[Any], bool]:
    """``--allow-drop``, else a confirmation when stdin is a terminal, else refuse."""
    if allow_drop:
        return True
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        return False

    def confirm(tables: Any) -> bool:
        return click.confirm(
            f"The new revision drops {', '.join(tables)}, deleting their data, because no"
            " discovered entity defines them any more. Write it?",
            default=False,
            err=True,
        )

    return confirm


# -- --bind ----------------------------------------------------------------------------------


def per_bind(function: _F) -> _F:
    """Add ``--bind KEY`` and run the command for that bind, or for every bind of the
    app in turn (with a header line per bind when there are several); the exit status is
    1 when it was 1 for any bind."""
    return _per_bind_command(function, None, database=False)


def per_database(function: _F) -> _F:
    """:func:`per_bind` for a command that works on the database: before it runs for a
    bind, ``Database: <masked URL> (<where it came from>)`` on stderr, as Flyway names
    the database it migrates."""
    return _per_bind_command(function, None, database=True)


def per_bind_json(document: Callable[[Sequence[Any]], object]) -> Callable[[_F], _F]:
    """:func:`per_bind` for a command with ``--json`` (``as_json``): then there are no
    header lines, the command hands its result to :func:`report_json` for each bind, and
    ``document(results)`` is printed as one JSON document at the end."""
    return lambda function: _per_bind_command(function, document, database=False)


def report_json(result: object) -> None:
    """Keep a bind's result for the one JSON document :func:`per_bind_json` prints."""
    click.get_current_context().meta[_JSON_KEY].append(result)


def name_database(target: BindTarget | None = None) -> None:
    """``Database: ...`` on stderr for ``target`` (default: the selected bind)."""
    target = target or _per_bind.selected_target()
    click.echo(f"Database: {target.database}", err=True)


def several_binds() -> bool:
    """Whether the command runs for several binds (no ``--bind``, several binds)."""
    return bool(click.get_current_context().meta.get(_SEVERAL_KEY))


def _per_bind_command(
    function: _F, document: Callable[[Sequence[Any]], object] | None, *, database: bool
) -> _F:
    @click.option(
        "--bind",
        "bind_key",
        default=None,
        metavar="KEY",
        help="Only this bind (ENTITYDB_BINDS key, or 'default'); default: every bind.",
    )
    @functools.wraps(function)
    def run(*args: Any, bind_key: str | None, **kwargs: Any) -> Any:
        targets = _per_bind.bind_targets(bind_key)
        headers = len(targets) > 1 and not kwargs.get("as_json")
        ctx = click.get_current_context()
        ctx.meta[_SEVERAL_KEY] = len(targets) > 1
        ctx.meta[_JSON_KEY] = []

        def run_one(target: BindTarget) -> bool:
            if headers:
                click.echo(target.header)
            if database:
                name_database(target)
            try:
                function(*args, **kwargs)
            except click.exceptions.Exit as done:
                return not done.exit_code
            return True

        ok = _per_bind.run_per_bind(targets, run_one)
        reports = ctx.meta.pop(_JSON_KEY)
        if reports and document is not None:
            click.echo(json.dumps(document(reports), indent=2))
        if not ok:
            ctx.exit(1)

    return run  # type: ignore[return-value]
