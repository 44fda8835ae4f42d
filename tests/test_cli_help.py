"""``--help`` always works: with a configuration error, the ``flask`` command still lists
the ``db`` group and every command's help, exit 0, and names the error in one line."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from flask_entitydb.cli import db_group

pytestmark = pytest.mark.slow

BAD_APP = """\
from flask import Flask
from flask_entitydb import EntityDB
def create_app():
    app = Flask(__name__)
    app.config['DB_CONNECTION_STRING'] = {url!r}
    EntityDB(app)
    return app
"""


def _flask(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "badapp", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "url",
    ["not a url s3cr3tPW", "mysql+mysqldb://root:s3cr3tPW@h/x?ssl=maybe"],
    ids=["unparsable", "bad-ssl"],
)
@pytest.mark.parametrize(
    "args",
    [("--help",), ("db", "--help"), ("db", "migrate", "--help"), ("db", "upgrade", "--help")],
    ids=["flask", "db", "db-migrate", "db-upgrade"],
)
def test_help_works_with_a_bad_configuration(
    tmp_path: Path, url: str, args: tuple[str, ...]
) -> None:
    (tmp_path / "badapp.py").write_text(BAD_APP.format(url=url))
    result = _flask(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cr3tPW" not in result.stdout + result.stderr
    assert "Usage:" in result.stdout
    if len(args) > 1:
        assert f"flask {' '.join(args[:-1])} [OPTIONS]" in result.stdout
    else:
        assert "  db  " in result.stdout  # the group is listed
    # the configuration error is named once, as a warning, not hidden
    warning = [line for line in result.stderr.splitlines() if "DB_CONNECTION_STRING" in line]
    assert len(warning) == 1, result.stderr
    assert warning[0].startswith("Warning (only help is shown until this is fixed): ")
    # a command (not its help) still fails with the error: tests/test_config.py


def _all_commands() -> dict[str, click.Command]:
    ctx = click.Context(db_group)
    found = {name: db_group.get_command(ctx, name) for name in db_group.list_commands(ctx)}
    return {name: command for name, command in found.items() if command is not None}


def test_every_listed_command_loads_under_its_name() -> None:
    """The group imports a command's module when the command is looked up: each name it
    lists gives a command of that name (a slip in the table would list a command that
    ``flask db <name>`` then says does not exist)."""
    ctx = click.Context(db_group)
    names = db_group.list_commands(ctx)
    assert {"init", "migrate", "upgrade", "current", "lint", "squash", "entities"} <= set(names)
    assert {name: command.name for name, command in _all_commands().items()} == {
        name: name for name in names
    }


def test_a_command_loads_only_its_own_module(tmp_path: Path) -> None:
    """``flask db current`` imports the module of ``current`` and none of the other
    commands' modules (nor what only they need, such as the squash machinery)."""
    code = (
        "import sys, click\n"
        "from flask_entitydb.cli import db_group\n"
        "db_group.get_command(click.Context(db_group), 'current')\n"
        "print(sorted(m for m in sys.modules if m.startswith('flask_entitydb.cli.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    loaded = ast.literal_eval(out)  # a list of module names
    assert "flask_entitydb.cli._inspect" in loaded
    assert not {"flask_entitydb.cli._squash", "flask_entitydb.cli._revisions"} & set(loaded)


def test_a_help_names_an_options_value_with_its_option() -> None:
    """A word of a command's help that is an option's value (``REVISION`` of ``--to``)
    comes with the option: 'squash the history up to REVISION' read as an argument, and
    'flask db squash abc123' failed with "Got unexpected extra argument"."""
    for name, command in _all_commands().items():
        arguments = {p.human_readable_name for p in command.params if isinstance(p, click.Argument)}
        for option in command.params:
            if not isinstance(option, click.Option) or option.metavar in (None, *arguments):
                continue
            if re.search(rf"\b{option.metavar}\b", command.help or ""):
                assert f"{option.opts[-1]} {option.metavar}" in (command.help or ""), name
