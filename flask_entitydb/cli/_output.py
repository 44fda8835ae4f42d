"""How the ``flask db`` commands print the API's results: revisions, runs, lock notices,
lint results, Alembic's log lines and the warnings."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import click

from flask_entitydb.cli._options import current_app_object, group_command
from flask_entitydb.discovery._undiscovered import packages_hint, undiscovered_modules
from flask_entitydb.migrations import _per_bind
from flask_entitydb.state import get_state

if TYPE_CHECKING:
    from flask_entitydb.migrations import (
        AppliedRevision,
        LintResult,
        NewRevision,
        RevisionInfo,
        StartedRevision,
    )
    from flask_entitydb.migrations._locks.locking import LockNotice


def lock_echo(verbose: bool) -> Callable[[LockNotice], None]:
    """Show lock notices: waiting for another run always (stderr), the lock taken with -v."""

    def echo(notice: LockNotice) -> None:
        if notice.kind == "waiting":
            click.echo(notice.message, err=True)
        elif verbose:
            click.echo(notice.message)

    return echo


def _on_terminal() -> bool:
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty is not None and isatty())


def echo_started(item: StartedRevision) -> None:
    """The revision starting, with the running count: on a terminal a line that the
    revision's ``Applied`` line replaces, else a plain line of its own."""
    if _on_terminal():
        click.echo(f"{item.describe()} ...", nl=False)
    else:
        click.echo(item.describe())


def echo_applied(item: AppliedRevision) -> None:
    """The revision applied; on a terminal over its starting line, with the count."""
    if _on_terminal() and item.total:
        click.echo(f"\r\x1b[K[{item.position}/{item.total}] {item.describe()}")
    else:
        click.echo(item.describe())


def echo_revisions(infos: list[RevisionInfo], verbose: bool) -> None:
    for info in infos:
        if not verbose:
            click.echo(info.line)
            continue
        journal = f"\n{info.journal}" if info.journal else ""
        click.echo(info.details + journal + "\n")


def echo_new_revision(new: NewRevision, verbose: bool = True) -> None:
    """The new file as Alembic and Flask-Migrate print it (``Generating ... done``), or
    with ``verbose`` the changes in words and the file."""
    if not verbose:
        # Alembic indents its messages on a terminal only
        isatty = getattr(sys.stdout, "isatty", None)
        indent = "  " if isatty is not None and isatty() else ""
        click.echo(f"{indent}Generating {new.path} ...  done")
    else:
        if new.changes:
            click.echo("Detected changes:")
            for change in new.changes:
                if change in new.drops:
                    click.echo(f"  ! {change}  (deletes its data)")
                else:
                    click.echo(f"  - {change}")
        click.echo(f"Wrote '{new.path}' (revision {new.revision}).")
    if new.drops:
        click.secho(
            f"Warning: this revision deletes data ({', '.join(new.drops)}); check the file"
            f" '{new.path}' before '{group_command('upgrade')}'.",
            fg="yellow",
            err=True,
        )


class _EchoAlembicLog(logging.Handler):
    """Alembic's log lines on stderr, formatted as Flask-Migrate's ``alembic.ini`` does."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(levelname)-5.5s [%(name)s] %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


@contextlib.contextmanager
def alembic_log_lines(enabled: bool) -> Iterator[None]:
    """While autogenerate runs, print what Alembic logs about the changes it detects
    (``INFO  [alembic.autogenerate.compare] Detected added table 'users'``) on stderr,
    as Flask-Migrate does; the host's logging configuration is left as it is."""
    if not enabled:
        yield
        return
    logger = logging.getLogger("alembic.autogenerate")
    handler = _EchoAlembicLog()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        # the host does not log these: show them here only, not in its handlers
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def warn_undiscovered() -> None:
    """Name the ``*_entity.py`` files discovery did not import."""
    app = current_app_object()
    missed = undiscovered_modules(app, get_state(app))
    if missed:
        click.secho(
            "Warning: discovery did not import the entity module"
            f"{'s' if len(missed) > 1 else ''} {', '.join(m.describe() for m in missed)};"
            f" its tables are not part of the revision; {packages_hint(missed)}.",
            fg="yellow",
            err=True,
        )


def echo_no_changes() -> None:
    click.echo(
        "No changes between the entities and the database; no revision written"
        " (--allow-empty writes one anyway).",
        err=True,
    )


def warn_sqlite_enums() -> None:
    """Say that changed Enum values are not seen when the selected bind is SQLite."""
    if _per_bind.enums_undetected():
        click.secho(
            "Warning: changes to the values of Enum columns are not detected on"
            " SQLite (it has no enum type); run 'flask db check' against MariaDB or"
            " PostgreSQL to see them.",
            fg="yellow",
            err=True,
        )


def echo_run(applied: list[AppliedRevision], target: str, verb: str) -> None:
    if not applied:
        click.echo(f"Nothing to do: the database is already at '{target}'.")
        return
    total = sum(item.elapsed for item in applied)
    count = len(applied)
    click.echo(f"{verb} {count} revision{'s' if count > 1 else ''} in {total:.2f} s.")


def echo_lint(result: LintResult) -> None:
    for line in result.describe():
        click.echo(line)
