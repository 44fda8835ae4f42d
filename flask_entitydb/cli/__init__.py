"""The ``flask db`` command group.

Every migration command is a thin wrapper over :mod:`flask_entitydb.migrations`, with the
names and options of Flask-Migrate. Expected failures are one ``Error: ...`` line on
stderr and exit status 1; the Alembic machinery is only imported when a command runs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click
from flask.cli import AppGroup

from flask_entitydb.state import get_state

if TYPE_CHECKING:
    from flask_entitydb.migrations import AppliedRevision, LintResult, NewRevision, RevisionInfo
    from flask_entitydb.migrations._locks.locking import LockNotice

_F = TypeVar("_F", bound=Callable[..., Any])
_DIRECTORY_KEY = "flask_entitydb.migrations_directory"


def _directory_option(function: _F) -> _F:
    return click.option(
        "-d",
        "--directory",
        default=None,
        metavar="FOLDER",
        help="Migrations folder (default: 'migrations' in the app's package, or"
        " ENTITYDB_MIGRATIONS_DIR).",
    )(function)


def _x_option(function: _F) -> _F:
    return click.option(
        "-x",
        "x_args",
        multiple=True,
        metavar="KEY=VALUE",
        help="Extra argument for env.py (context.get_x_argument()); repeatable.",
    )(function)


def _lock_timeout_option(function: _F) -> _F:
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=60.0,
        show_default=True,
        help="Seconds to wait for another process's migration to finish.",
    )(function)


def _lock_verbose_option(function: _F) -> _F:
    return click.option(
        "-v", "--verbose", is_flag=True, help="Say which migration lock was taken, and why."
    )(function)


def _lock_echo(verbose: bool) -> Callable[[LockNotice], None]:
    """Show lock notices: waiting for another run always (stderr), the lock taken with -v."""

    def echo(notice: LockNotice) -> None:
        if notice.kind == "waiting":
            click.echo(notice.message, err=True)
        elif verbose:
            click.echo(notice.message)

    return echo


def _tag_option(function: _F) -> _F:
    return click.option("--tag", default=None, help="Arbitrary tag for custom env.py scripts.")(
        function
    )


_JSON_KEY = "flask_entitydb.json_reports"


def _per_bind(function: _F) -> _F:
    """Add ``--bind KEY`` and run the command for that bind, or for every bind of the
    app in turn (with a header line per bind when there are several); the exit status is
    1 when it was 1 for any bind.

    With ``--json`` (``as_json``) there are no header lines: the command hands its result
    to :func:`_report_json` for each bind, and one JSON document is printed at the end.
    """

    @click.option(
        "--bind",
        "bind_key",
        default=None,
        metavar="KEY",
        help="Only this bind (ENTITYDB_BINDS key, or 'default'); default: every bind.",
    )
    @functools.wraps(function)
    def run(*args: Any, bind_key: str | None, **kwargs: Any) -> Any:
        from flask import current_app

        from flask_entitydb._settings.masking import mask_url
        from flask_entitydb.migrations.binds import bind_name, selected_keys, using_bind
        from flask_entitydb.state import get_state

        state = get_state(current_app)
        keys = selected_keys(state, bind_key)
        failed = False
        as_json = bool(kwargs.get("as_json"))
        meta = click.get_current_context().meta
        meta[_JSON_KEY] = []
        for key in keys:
            if len(keys) > 1 and not as_json:
                url = state.settings.bind(key).primary.url
                click.echo(f"[{bind_name(key)}] {mask_url(url)}")
            with using_bind(key):
                try:
                    function(*args, **kwargs)
                except click.exceptions.Exit as done:
                    if done.exit_code:
                        failed = True
        reports = meta.pop(_JSON_KEY)
        if reports:
            import json

            from flask_entitydb.migrations._lint.run import json_report

            click.echo(json.dumps(json_report(reports), indent=2))
        if failed:
            click.get_current_context().exit(1)

    return run  # type: ignore[return-value]


@click.group("db", cls=AppGroup)
@_directory_option
@click.pass_context
def db_group(ctx: click.Context, directory: str | None) -> None:
    """Database migrations (Alembic) and entity discovery."""
    ctx.meta[_DIRECTORY_KEY] = directory


def _folder(directory: str | None) -> str | None:
    """The command's ``-d``, else the group's ``-d``, else ``None`` (the app's folder)."""
    if directory:
        return directory
    value = click.get_current_context().meta.get(_DIRECTORY_KEY)
    return str(value) if value else None


def _command(arguments: str) -> str:
    """``flask <group> <arguments>`` with the group's real name (``command_name``)."""
    name = "db"
    parent: click.Context | None = click.get_current_context()
    while parent is not None:
        if parent.command is db_group:
            name = parent.info_name or name
            break
        parent = parent.parent
    return " ".join(part for part in ("flask", name, arguments) if part)


def _echo_applied(item: AppliedRevision) -> None:
    click.echo(item.describe())


def _echo_revisions(infos: list[RevisionInfo], verbose: bool) -> None:
    for info in infos:
        click.echo(info.details + "\n" if verbose else info.line)


def _echo_new_revision(new: NewRevision, verbose: bool = True) -> None:
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
            f" '{new.path}' before '{_command('upgrade')}'.",
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
def _alembic_log_lines(enabled: bool) -> Iterator[None]:
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


def _verbose_option(function: _F) -> _F:
    return click.option(
        "-v",
        "--verbose",
        is_flag=True,
        help="Describe the changes in words instead of Alembic's log lines.",
    )(function)


def _allow_drop_option(function: _F) -> _F:
    return click.option(
        "--allow-drop",
        is_flag=True,
        help="Write a revision that drops tables (deleting their data) without asking.",
    )(function)


def _drop_permission(allow_drop: bool) -> bool | Callable[[Any], bool]:
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


def _warn_undiscovered() -> None:
    """Name the ``*_entity.py`` files discovery did not import."""
    from flask import current_app

    from flask_entitydb.discovery._undiscovered import undiscovered_modules

    missed = undiscovered_modules(current_app, get_state(current_app))
    if missed:
        click.secho(
            "Warning: discovery did not import the entity module"
            f"{'s' if len(missed) > 1 else ''} {', '.join(m.describe() for m in missed)};"
            " its tables are not part of the revision. List its package in"
            " 'ENTITYDB_ENTITY_PACKAGES' ('flask db entities' shows what was discovered).",
            fg="yellow",
            err=True,
        )


def _echo_no_changes() -> None:
    click.echo(
        "No changes between the entities and the database; no revision written"
        " (--allow-empty writes one anyway).",
        err=True,
    )


def _warn_sqlite_enums() -> None:
    """SQLite stores an Enum as a VARCHAR, so a changed list of values cannot be seen
    there: say so when the entities have Enum columns."""
    import sqlalchemy as sa
    from flask import current_app

    from flask_entitydb.migrations.binds import bind_engine, bind_metadata, selected_bind

    state = get_state(current_app)
    key = selected_bind()
    engine = bind_engine(state, key)
    if engine.url.get_backend_name() != "sqlite":
        return
    dialect = engine.dialect
    for table in bind_metadata(state.db.metadata, key).tables.values():
        for column in table.columns:
            if isinstance(column.type.dialect_impl(dialect), sa.Enum):
                click.secho(
                    "Warning: changes to the values of Enum columns are not detected on"
                    " SQLite (it has no enum type); run 'flask db check' against MariaDB or"
                    " PostgreSQL to see them.",
                    fg="yellow",
                    err=True,
                )
                return


def _echo_run(applied: list[AppliedRevision], target: str, verb: str) -> None:
    if not applied:
        click.echo(f"Nothing to do: the database is already at '{target}'.")
        return
    total = sum(item.elapsed for item in applied)
    count = len(applied)
    click.echo(f"{verb} {count} revision{'s' if count > 1 else ''} in {total:.2f} s.")


@db_group.command("init")
@_per_bind
@_directory_option
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
    from flask_entitydb import migrations
    from flask_entitydb.migrations._config import migrations_directory
    from flask_entitydb.migrations.binds import bind_name, selected_bind

    folder = _folder(directory)
    key = selected_bind()
    if key is not None or _several_binds():
        existing = migrations_directory(current_app_object(), folder)
        if not replace_env and os.path.isdir(existing) and os.listdir(existing):
            click.echo(f"Kept the existing migrations folder '{existing}' ({bind_name(key)}).")
            return
    if replace_env:
        done = migrations.replace_env_file(folder)
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
    path = migrations.init(folder, package=package, template=template)
    db = _command(f"-d {shlex.quote(folder)}" if folder else "")
    click.echo(
        f"Created the migrations folder '{path}'; next, run '{db} migrate -m"
        f" \"first revision\"' and '{db} upgrade'."
    )


@db_group.command("list-templates")
def list_templates_command() -> None:
    """List the templates 'init --template' can write."""
    from flask_entitydb import migrations

    click.echo("Available templates:\n")
    for name, description in migrations.list_templates():
        click.echo(f"{name} - {description}")
    click.echo(
        "\nTemplates are used via the 'init' command, e.g.:\n\n"
        f"  {_command('init --template entitydb')}\n\n"
        "A folder of your own (env.py calling run_migrations(), script.py.mako,"
        " alembic.ini.mako) works too: --template ./my-template"
    )


def current_app_object() -> Any:
    from flask import current_app

    return current_app._get_current_object()  # type: ignore[attr-defined]


def _several_binds() -> bool:
    """Whether ``init`` runs for several binds (then existing folders are kept)."""
    from flask_entitydb.state import get_state

    return len(get_state(current_app_object()).settings.bind_keys) > 1 and (
        click.get_current_context().params.get("bind_key") is None
    )


@db_group.command("revision")
@_per_bind
@_directory_option
@click.option("-m", "--message", default=None, help="Revision message.")
@click.option("--autogenerate", is_flag=True, help="Fill the revision with the entities' changes.")
@click.option("--sql", is_flag=True, help="Offline mode (needs revision_environment).")
@click.option("--head", default="head", show_default=True, help="Revision to build upon.")
@click.option("--splice", is_flag=True, help="Allow a non-head revision as the --head.")
@click.option("--branch-label", default=None, help="Label for the new branch.")
@click.option("--version-path", default=None, help="Version folder to write into.")
@click.option("--rev-id", default=None, help="Revision id to use instead of a generated one.")
@click.option("--depends-on", multiple=True, help="Revision this one depends on; repeatable.")
@click.option(
    "--allow-empty",
    is_flag=True,
    help="With --autogenerate, write a revision even when nothing changed.",
)
@_verbose_option
@_allow_drop_option
def revision_command(
    directory: str | None,
    message: str | None,
    autogenerate: bool,
    sql: bool,
    head: str,
    splice: bool,
    branch_label: str | None,
    version_path: str | None,
    rev_id: str | None,
    depends_on: tuple[str, ...],
    allow_empty: bool,
    verbose: bool,
    allow_drop: bool,
) -> None:
    """Write a new revision file (empty unless --autogenerate)."""
    from flask_entitydb import migrations

    with _alembic_log_lines(autogenerate and not verbose):
        new = migrations.revision(
            message,
            autogenerate=autogenerate,
            allow_empty=allow_empty,
            sql=sql,
            head=head,
            splice=splice,
            branch_label=branch_label,
            version_path=version_path,
            rev_id=rev_id,
            depends_on=list(depends_on) or None,
            allow_drop=_drop_permission(allow_drop),
            directory=_folder(directory),
        )
    if autogenerate:
        _warn_undiscovered()  # after: a refusal names the files itself
    if new is None:
        _echo_no_changes()
        return
    _echo_new_revision(new, verbose)


@db_group.command("migrate")
@_per_bind
@_directory_option
@click.option("-m", "--message", default=None, help="Revision message (default: the changes).")
@click.option("--head", default="head", show_default=True, help="Revision to build upon.")
@click.option("--splice", is_flag=True, help="Allow a non-head revision as the --head.")
@click.option("--branch-label", default=None, help="Label for the new branch.")
@click.option("--version-path", default=None, help="Version folder to write into.")
@click.option("--rev-id", default=None, help="Revision id to use instead of a generated one.")
@click.option("--allow-empty", is_flag=True, help="Write a revision even when nothing changed.")
@_allow_drop_option
@_x_option
@_verbose_option
def migrate_command(
    directory: str | None,
    message: str | None,
    head: str,
    splice: bool,
    branch_label: str | None,
    version_path: str | None,
    rev_id: str | None,
    allow_empty: bool,
    allow_drop: bool,
    x_args: tuple[str, ...],
    verbose: bool,
) -> None:
    """Autogenerate a revision from the entities (revision --autogenerate).

    A revision that drops a table is written only with --allow-drop or when confirmed on
    a terminal, and never while an '*_entity.py' file of the project was not discovered.
    """
    from flask_entitydb import migrations

    with _alembic_log_lines(not verbose):
        new = migrations.migrate(
            message,
            allow_empty=allow_empty,
            head=head,
            splice=splice,
            branch_label=branch_label,
            version_path=version_path,
            rev_id=rev_id,
            allow_drop=_drop_permission(allow_drop),
            x_args=x_args,
            directory=_folder(directory),
        )
    _warn_undiscovered()  # after: a refusal names the files itself
    _warn_sqlite_enums()
    if new is None:
        _echo_no_changes()
        return
    _echo_new_revision(new, verbose)
    _lint_new_revision(new.revision, _folder(directory))


@db_group.command("edit")
@_directory_option
@click.option(
    "--bind",
    "bind_key",
    default=None,
    metavar="KEY",
    help="The bind whose revision it is (default: the one bind holding REVISION).",
)
@click.argument("revision", default="head")
def edit_command(directory: str | None, bind_key: str | None, revision: str) -> None:
    """Open a revision file in $EDITOR."""
    from flask_entitydb import migrations
    from flask_entitydb.migrations.binds import using_bind

    with using_bind(_bind_holding(revision, bind_key, _folder(directory))):
        migrations.edit(revision, directory=_folder(directory))


def _bind_holding(revision: str, wanted: str | None, directory: str | None) -> str | None:
    """The bind ``edit`` opens ``revision`` of: ``--bind``, the app's one bind, or the
    one bind whose migrations folder has it."""
    from flask_entitydb import migrations
    from flask_entitydb.errors import MigrationError
    from flask_entitydb.migrations.binds import bind_name, selected_keys, using_bind
    from flask_entitydb.state import get_state

    keys = selected_keys(get_state(current_app_object()), wanted)
    if len(keys) == 1:
        return keys[0]
    holding = []
    for key in keys:
        with using_bind(key):
            try:
                migrations.show(revision, directory=directory)
            except MigrationError:
                continue
            holding.append(key)
    if len(holding) == 1:
        return holding[0]
    names = ", ".join(f"'{bind_name(key)}'" for key in holding or keys)
    if holding:
        raise MigrationError(
            f"The revision '{revision}' is in the binds {names}; choose one with"
            f" '{_command(f'edit --bind KEY {revision}')}'."
        )
    raise MigrationError(
        f"No bind ({names}) has the revision '{revision}'; check 'flask db history'."
    )


@db_group.command("merge")
@_per_bind
@_directory_option
@click.option("-m", "--message", default=None, help="Revision message.")
@click.option("--branch-label", default=None, help="Label for the new branch.")
@click.option("--rev-id", default=None, help="Revision id to use instead of a generated one.")
@click.argument("revisions", nargs=-1)
def merge_command(
    directory: str | None,
    message: str | None,
    branch_label: str | None,
    rev_id: str | None,
    revisions: tuple[str, ...],
) -> None:
    """Write a revision merging REVISIONS (default: all heads); with several binds, in
    each bind that has several heads (REVISIONS need --bind)."""
    from flask_entitydb import migrations
    from flask_entitydb.errors import MigrationError
    from flask_entitydb.migrations.binds import selected_bind

    several = _several_binds()
    if several and revisions:
        raise MigrationError(
            "Revisions to merge belong to one bind; name it with"
            f" '{_command('merge --bind KEY ' + ' '.join(revisions))}'."
        )
    if several and len(migrations.heads(directory=_folder(directory))) < 2:
        from flask_entitydb.migrations.binds import bind_name

        click.echo(f"Nothing to merge in '{bind_name(selected_bind())}': it has one head.")
        return
    new = migrations.merge(
        list(revisions) or "heads",
        message,
        branch_label=branch_label,
        rev_id=rev_id,
        directory=_folder(directory),
    )
    _echo_new_revision(new)


@db_group.command("upgrade")
@_per_bind
@_directory_option
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (offline).")
@_tag_option
@_x_option
@_lock_timeout_option
@click.argument("revision", default="head")
@_lock_verbose_option
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
    from flask_entitydb import migrations

    if sql:
        click.echo(
            migrations.upgrade_sql(revision, tag=tag, x_args=x_args, directory=_folder(directory)),
            nl=False,
        )
        return
    applied = migrations.upgrade(
        revision,
        tag=tag,
        x_args=x_args,
        lock_timeout=lock_timeout,
        on_apply=_echo_applied,
        on_lock=_lock_echo(verbose),
        directory=_folder(directory),
    )
    _echo_run(applied, revision, "Upgraded:")


@db_group.command("downgrade", context_settings={"ignore_unknown_options": True})
@_per_bind
@_directory_option
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it; needs FROM:TO.")
@_tag_option
@_x_option
@_lock_timeout_option
@click.argument("revision", default="-1")
@_lock_verbose_option
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
    from flask_entitydb import migrations

    if sql:
        click.echo(
            migrations.downgrade_sql(
                revision, tag=tag, x_args=x_args, directory=_folder(directory)
            ),
            nl=False,
        )
        return
    applied = migrations.downgrade(
        revision,
        tag=tag,
        x_args=x_args,
        lock_timeout=lock_timeout,
        on_apply=_echo_applied,
        on_lock=_lock_echo(verbose),
        directory=_folder(directory),
    )
    _echo_run(applied, revision, "Downgraded:")


@db_group.command("show")
@_per_bind
@_directory_option
@click.argument("revision", default="head")
def show_command(directory: str | None, revision: str) -> None:
    """Show REVISION (default: head; 'current': the database's)."""
    from flask_entitydb import migrations

    _echo_revisions(migrations.show(revision, directory=_folder(directory)), verbose=True)


@db_group.command("history")
@_per_bind
@_directory_option
@click.option("-r", "--rev-range", default=None, help="Range, e.g. 'base:current'.")
@click.option("-v", "--verbose", is_flag=True, help="Show every detail.")
@click.option("-i", "--indicate-current", is_flag=True, help="Mark the database's revision.")
def history_command(
    directory: str | None, rev_range: str | None, verbose: bool, indicate_current: bool
) -> None:
    """List the revisions, newest first."""
    from flask_entitydb import migrations

    infos = migrations.history(
        rev_range, indicate_current=indicate_current, directory=_folder(directory)
    )
    _echo_revisions(infos, verbose)


@db_group.command("heads")
@_per_bind
@_directory_option
@click.option("-v", "--verbose", is_flag=True, help="Show every detail.")
@click.option("--resolve-dependencies", is_flag=True, help="Treat dependencies as down revisions.")
def heads_command(directory: str | None, verbose: bool, resolve_dependencies: bool) -> None:
    """Show the head revisions."""
    from flask_entitydb import migrations

    infos = migrations.heads(
        resolve_dependencies=resolve_dependencies, directory=_folder(directory)
    )
    _echo_revisions(infos, verbose)


@db_group.command("branches")
@_per_bind
@_directory_option
@click.option("-v", "--verbose", is_flag=True, help="Show every detail.")
def branches_command(directory: str | None, verbose: bool) -> None:
    """Show the branch points."""
    from flask_entitydb import migrations

    for info in migrations.branches(directory=_folder(directory)):
        click.echo(info.details if verbose else info.line)
        for child in info.next_revisions:
            click.echo(f"{' ' * len(info.revision)} -> {child}")


@db_group.command("current")
@_per_bind
@_directory_option
@click.option("-v", "--verbose", is_flag=True, help="Show every detail.")
def current_command(directory: str | None, verbose: bool) -> None:
    """Show the database's revision."""
    from flask_entitydb import migrations

    infos = migrations.current(directory=_folder(directory))
    if verbose:
        from flask import current_app

        from flask_entitydb._settings.masking import mask_url
        from flask_entitydb.migrations.binds import selected_bind

        settings = get_state(current_app).settings
        url = settings.bind(selected_bind()).primary.url
        click.echo(f"Current revision(s) for {mask_url(url)}:")
    if not infos:  # stdout stays empty, as with Flask-Migrate and Alembic
        click.echo(
            f"The database has no revision applied ('{_command('upgrade')}' applies them).",
            err=True,
        )
    _echo_revisions(infos, verbose)


@db_group.command("stamp")
@_per_bind
@_directory_option
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (offline).")
@_tag_option
@click.option("--purge", is_flag=True, help="Empty the version table first.")
@_lock_timeout_option
@click.argument("revisions", nargs=-1)
@_lock_verbose_option
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
    from flask_entitydb import migrations

    targets = list(revisions) or ["head"]
    if sql:
        click.echo(migrations.stamp_sql(targets, tag=tag, directory=_folder(directory)), nl=False)
        return
    applied = migrations.stamp(
        targets,
        purge=purge,
        tag=tag,
        lock_timeout=lock_timeout,
        on_apply=_echo_applied,
        on_lock=_lock_echo(verbose),
        directory=_folder(directory),
    )
    if not applied:
        click.echo(f"Nothing to do: the database is already at '{', '.join(targets)}'.")


@db_group.command("check")
@_per_bind
@_directory_option
@_x_option
@click.option("--lint", is_flag=True, help="Also fail on 'flask db lint --all' hazards.")
@click.pass_context
def check_command(
    ctx: click.Context, directory: str | None, x_args: tuple[str, ...], lint: bool
) -> None:
    """Exit 0 when the database is at head and matches the entities, else 1 with the
    differences (a CI gate)."""
    from flask_entitydb import migrations

    result = migrations.check(x_args=x_args, directory=_folder(directory))
    if not result.unapplied:  # the entities were compared
        _warn_sqlite_enums()
    for line in result.describe():
        click.echo(line)
    linted = migrations.lint(all_revisions=True, directory=_folder(directory)) if lint else None
    if linted is not None:
        _echo_lint(linted, as_json=False)
    if not result.ok or (linted is not None and not linted.ok):
        ctx.exit(1)


# -- flask db lint -------------------------------------------------------------------------


def _echo_lint(result: LintResult, as_json: bool) -> None:
    if as_json:
        _report_json(result)
        return
    for line in result.describe():
        click.echo(line)


def _report_json(result: LintResult) -> None:
    """Keep a bind's result for the one JSON document :func:`_per_bind` prints."""
    click.get_current_context().meta[_JSON_KEY].append(result)


def _lint_new_revision(revision: str, directory: str | None) -> None:
    """Print the hazards of the revision ``migrate`` just wrote (it stays written)."""
    from flask_entitydb import migrations
    from flask_entitydb.errors import MigrationError

    try:
        result = migrations.lint(revision, directory=directory)
    except MigrationError as error:
        click.secho(f"Warning: the new revision was not linted: {error}", fg="yellow", err=True)
        return
    if result.findings or result.notes:
        _echo_lint(result, as_json=False)
        click.secho(
            "Warning: the new revision has hazards for a running app (above); apply the"
            " recipes, or mark reviewed ones '# entitydb: allow <rule>'.",
            fg="yellow",
            err=True,
        )


@db_group.command("lint")
@_per_bind
@_directory_option
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
    from flask_entitydb import migrations

    result = migrations.lint(rev_range, all_revisions=all_revisions, directory=_folder(directory))
    _echo_lint(result, as_json)
    if not result.ok:
        ctx.exit(1)


# ------------------------------------------------------------------------------------------
# Entity discovery: `flask db entities`. Keep this section at the end of the file.
# ------------------------------------------------------------------------------------------


@db_group.command("entities")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def entities_command(as_json: bool) -> None:
    """List the entities: class, table, module file, source and column count; also the
    mapped classes discovery did not find (imported by hand) and the '*_entity.py' files
    it did not import."""
    import json

    from flask import current_app

    from flask_entitydb.discovery import Discovery, EntityInfo
    from flask_entitydb.discovery._undiscovered import undiscovered_classes, undiscovered_modules

    state = get_state(current_app)
    discovery = cast(Discovery, state.discovery)
    details: list[EntityInfo] = list(discovery.details) + list(
        undiscovered_classes(state, state.db.metadata)
    )
    missed = undiscovered_modules(current_app, state)
    if as_json:
        from flask_entitydb._engine.routes import table_bind_key
        from flask_entitydb.migrations.binds import bind_name

        tables = state.db.metadata.tables
        entities = [
            {
                "class": info.name,
                "table": info.table,
                "bind": bind_name(table_bind_key(tables.get(info.table))),
                "module": info.module,
                "file": info.file,
                "source": info.source,
                "columns": info.columns,
                "discovered": info.source != "not discovered",
            }
            for info in details
        ]
        undiscovered = [
            {"file": m.file, "path": m.path, "module": m.module, "imported": m.imported}
            for m in missed
        ]
        click.echo(
            json.dumps(
                {
                    "entities": entities,
                    "searched": list(discovery.searched),
                    "undiscovered_modules": undiscovered,
                }
            )
        )
        return
    if not details:
        click.echo(f"No entities found; searched: {', '.join(discovery.searched)}.")
    else:
        rows = [("Class", "Table", "Module file", "Source", "Columns")]
        rows += [
            (info.name, info.table, info.file, info.source, str(info.columns)) for info in details
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            click.echo("  ".join(cells).rstrip())
    if len(details) > len(discovery.details):
        click.echo(
            "Classes marked 'not discovered' are mapped but were imported by hand, not"
            " found by discovery; move their modules into a searched package or list it in"
            " 'ENTITYDB_ENTITY_PACKAGES'."
        )
    if missed:
        click.echo(
            f"Entity modules discovery did not import (searched: {', '.join(discovery.searched)}):"
        )
        for module in missed:
            click.echo(f"  - {module.describe()}")
        click.echo(
            "List their package in 'ENTITYDB_ENTITY_PACKAGES', or rename a file that is"
            " not an entity module; 'flask db migrate' does not drop tables while they exist."
        )
