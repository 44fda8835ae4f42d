"""Switching an existing migrations folder to flask-entitydb: ``flask db init --replace-env``.

The old ``env.py`` (Flask-Migrate's, or a hand-made one) is kept as a backup, and what it
configured beyond Flask-Migrate's stock file (an ``include_object`` hook, options passed to
``context.configure()``, helper functions) is listed with flask-entitydb's equivalent, so
nothing is dropped silently. A kept ``alembic.ini`` gets the ``script_location`` that
Flask-Migrate only set in code, so Alembic can also be run directly.
"""

from __future__ import annotations

import ast
import os
import re
import sys

import click

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._config import TEMPLATE, TEMPLATES_DIR
from flask_entitydb.migrations.results import EnvReplacement

# What Flask-Migrate's env.py templates contain anyway: not customisations.
_STOCK_FUNCTIONS = frozenset(
    {
        "get_engine",
        "get_engine_url",
        "get_metadata",
        "run_migrations_offline",
        "run_migrations_online",
        "process_revision_directives",
        "include_name",  # flask-multidb's, filtering the tables of each bind
        "do_run_migrations",  # aioflask's
        "run_async_migrations",
    }
)
_STOCK_CONFIGURE = frozenset(
    {
        "url",
        "connection",
        "target_metadata",
        "literal_binds",
        "dialect_opts",
        "upgrade_token",
        "downgrade_token",
    }
)
_STOCK_MODULES = (
    "logging",
    "flask",
    "alembic",
    "sqlalchemy",
    "__future__",
    "asyncio",
    "re",
    "os",
    "sys",
)

_EQUIVALENTS = {
    "include_object": "list the tables to leave alone in ENTITYDB_EXCLUDE_TABLES (glob"
    " patterns), or pass the hook as run_migrations(include_object=...) in env.py",
    "include_name": "list the tables to leave alone in ENTITYDB_EXCLUDE_TABLES (glob"
    " patterns), or pass the hook as run_migrations(include_name=...) in env.py",
    "compare_type": "set ENTITYDB_COMPARE_TYPE, or pass run_migrations(compare_type=...)",
    "compare_server_default": "set ENTITYDB_COMPARE_SERVER_DEFAULT, or pass"
    " run_migrations(compare_server_default=...)",
    "render_as_batch": "nothing to do: flask-entitydb always renders batch operations",
    "process_revision_directives": "pass it as run_migrations(process_revision_directives=...)"
    " (flask-entitydb already writes no empty revision)",
}


def _is_ours(text: str) -> bool:
    return "run_migrations(" in text and "flask_entitydb" in text


def _template_env() -> str:
    with open(os.path.join(TEMPLATES_DIR, TEMPLATE, "env.py"), encoding="utf-8") as file:
        return file.read()


def _backup_path(env: str) -> str:
    candidate = env + ".bak"
    number = 1
    while os.path.exists(candidate):
        candidate = f"{env}.bak{number}"
        number += 1
    return candidate


def customisations(text: str) -> tuple[str, ...]:
    """What an ``env.py`` configures beyond Flask-Migrate's stock template, each with
    flask-entitydb's equivalent (empty for the stock file or one that does not parse)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return ("the file does not parse; compare it with the backup by hand",)
    found: list[str] = []
    stock_hooks = _stock_hooks(tree)

    def add(item: str) -> None:
        if item not in found:
            found.append(item)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_configure(node.func):
            for keyword in node.keywords:
                if keyword.arg is None or keyword.arg in _STOCK_CONFIGURE:
                    continue
                if (keyword.arg, ast.unparse(keyword.value)) in stock_hooks:
                    continue
                value = ast.unparse(keyword.value)
                add(f"{keyword.arg}={value} (context.configure): {_equivalent(keyword.arg)}")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                key = _subscript_key(target, "conf_args")
                if key is not None and key != "process_revision_directives":
                    add(f"conf_args[{key!r}] (context.configure): {_equivalent(key)}")
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name not in _STOCK_FUNCTIONS:
                add(
                    f"function '{node.name}' (line {node.lineno}): its code is in the backup;"
                    " a hook goes to run_migrations(<option>=...) in env.py"
                )
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for module in _imported_modules(node):
                if not module.startswith(_STOCK_MODULES):
                    add(
                        f"import of '{module}' (line {node.lineno}): the entities (or"
                        " models) come from the app; import it in env.py only if a hook"
                        " needs it"
                    )
    return tuple(found)


_STOCK_DIRECTIVE_CALLS = frozenset({"getattr", "is_empty", "info", "len"})
"""All that the ``process_revision_directives`` of Flask-Migrate's templates call: it
drops an empty autogenerated revision and logs 'No changes in schema detected.'."""


def _stock_hooks(tree: ast.Module) -> set[tuple[str, str]]:
    """The ``context.configure()`` keywords that pass Flask-Migrate's own hooks: its
    ``process_revision_directives`` (older templates pass it directly, newer ones through
    ``conf_args``) and the ``--sql`` buffer of its multi-database templates."""
    stock = {("output_buffer", "buffer")}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "process_revision_directives":
            called = {
                call.func.attr if isinstance(call.func, ast.Attribute) else ast.unparse(call.func)
                for call in ast.walk(node)
                if isinstance(call, ast.Call)
            }
            if "is_empty" in called and called <= _STOCK_DIRECTIVE_CALLS:
                stock.add(("process_revision_directives", "process_revision_directives"))
    return stock


def _is_configure(func: ast.expr) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "configure"
        and (isinstance(func.value, ast.Name) and func.value.id == "context")
    )


def _subscript_key(target: ast.expr, name: str) -> str | None:
    if (
        isinstance(target, ast.Subscript)
        and isinstance(target.value, ast.Name)
        and target.value.id == name
        and isinstance(target.slice, ast.Constant)
        and isinstance(target.slice.value, str)
    ):
        return target.slice.value
    return None


def _imported_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # a relative import
        return ["." * node.level + (node.module or "")]
    return [node.module or ""]


def _equivalent(option: str) -> str:
    return _EQUIVALENTS.get(option, f"pass it as run_migrations({option}=...) in env.py")


def _ini_additions(ini: str, import_root: str | None) -> list[str]:
    """The lines ``[alembic]`` of ``ini`` lacks for Alembic to run directly."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ini, encoding="utf-8")
    except configparser.Error:
        return []
    section = parser["alembic"] if parser.has_section("alembic") else {}
    lines: list[str] = []
    if "script_location" not in section or _from_working_directory(section["script_location"]):
        lines.append("script_location = %(here)s")
    if "prepend_sys_path" not in section and import_root is not None:
        relative = os.path.relpath(import_root, os.path.dirname(ini)).replace(os.sep, "/")
        lines.append("prepend_sys_path = %(here)s" + ("" if relative == "." else f"/{relative}"))
        if "path_separator" not in section:
            lines.append("path_separator = os")
    return lines


def _from_working_directory(location: str) -> bool:
    """Whether a ``script_location`` names this folder only when Alembic runs from inside
    it: ``.``, which Alembic takes from the working directory (``alembic -c
    app/migrations/alembic.ini`` from the repository root then finds no ``env.py``)."""
    return location.strip() in {".", "./"}


def _comment_out_script_location(lines: list[str]) -> None:
    """Comment out the ``script_location`` of ``[alembic]`` that is replaced."""
    section = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped
        elif section == "[alembic]" and re.match(r"script_location\s*[=:]", stripped):
            lines[index] = (
                f"# {stripped}  (replaced: Alembic takes it from the working directory)\n"
            )


def complete_ini(folder: str, import_root: str | None) -> tuple[str, ...]:
    """Add what a kept ``alembic.ini`` needs for Alembic run directly
    (``script_location``, which Flask-Migrate only set in code, and the app's import
    path) to its ``[alembic]`` section, keeping everything else as written.

    :returns: the settings added (empty: the file was left as it was).
    """
    ini = os.path.join(folder, "alembic.ini")
    if not os.path.isfile(ini):
        return ()
    additions = _ini_additions(ini, import_root)
    if not additions:
        return ()
    with open(ini, encoding="utf-8") as file:
        lines = file.read().splitlines(keepends=True)
    if "script_location = %(here)s" in additions:
        _comment_out_script_location(lines)
    block = [
        "# added by 'flask db init --replace-env', so Alembic can run directly:\n",
        *(line + "\n" for line in additions),
    ]
    for index, line in enumerate(lines):
        if line.strip() == "[alembic]":
            lines[index + 1 : index + 1] = block
            break
    else:
        lines[:0] = ["[alembic]\n", *block, "\n"]
    with open(ini, "w", encoding="utf-8") as file:
        file.writelines(lines)
    return tuple(line.split(" = ")[0] for line in additions)


def replace_env(folder: str, import_root: str | None) -> EnvReplacement:
    """Write flask-entitydb's ``env.py`` into the existing migrations ``folder``, keeping
    the old one as ``env.py.bak`` and listing what it configured that the new one does
    not; complete ``alembic.ini`` for Alembic run directly.

    :raises MigrationError: the folder does not exist.
    """
    env = os.path.join(folder, "env.py")
    if not os.path.isdir(folder):
        raise MigrationError(
            f"There is no migrations folder at '{folder}' whose env.py could be replaced;"
            " run 'flask db init' to create one."
        )
    backup: str | None = None
    removed: tuple[str, ...] = ()
    if os.path.isfile(env):
        with open(env, encoding="utf-8") as file:
            old = file.read()
        if not _is_ours(old):
            backup = _backup_path(env)
            with open(backup, "w", encoding="utf-8") as file:
                file.write(old)
            removed = customisations(old)
    with open(env, "w", encoding="utf-8") as file:
        file.write(_template_env())
    added = complete_ini(folder, import_root)
    return EnvReplacement(path=env, backup=backup, removed=removed, ini_added=added)


def initialising_folder() -> bool:
    """Whether the ``flask`` command is loading the app to find its ``db init`` command
    (for example ``init --replace-env``): an app that migrates at start-up then skips that
    migration instead of failing on the folder the command is about to create or fix.

    Only while the ``flask`` command resolves which command to run (nothing in the API has
    been called yet, so there is no other signal); once a command runs, this is false, so
    the API called from any command behaves the same whatever the command line says.
    """
    from flask.cli import ScriptInfo

    context = click.get_current_context(silent=True)
    if context is None:
        return False
    root = context.find_root()
    if not isinstance(root.obj, ScriptInfo) or root.invoked_subcommand is not None:
        return False  # not loaded by the 'flask' command resolving its subcommand
    # click has taken the arguments off the context while it resolves the command group
    # (which is when the app is loaded), so read them from the command line
    return "init" in sys.argv[1:]
