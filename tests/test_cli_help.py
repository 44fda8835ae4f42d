"""``--help`` always works: with a configuration error, the ``flask`` command still lists
the ``db`` group and every command's help, exit 0, and names the error in one line."""

from __future__ import annotations

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


def test_a_help_names_an_options_value_with_its_option() -> None:
    """A word of a command's help that is an option's value (``REVISION`` of ``--to``)
    comes with the option: 'squash the history up to REVISION' read as an argument, and
    'flask db squash abc123' failed with "Got unexpected extra argument"."""
    for name, command in db_group.commands.items():
        arguments = {p.human_readable_name for p in command.params if isinstance(p, click.Argument)}
        for option in command.params:
            if not isinstance(option, click.Option) or option.metavar in (None, *arguments):
                continue
            if re.search(rf"\b{option.metavar}\b", command.help or ""):
                assert f"{option.opts[-1]} {option.metavar}" in (command.help or ""), name
