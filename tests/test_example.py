"""The example app (``examples/bookshelf``) works as the README and the docs say.

Each test runs the example from a copy in ``tmp_path``, through the real ``flask`` and
``pytest`` commands in subprocesses, so nothing is written into the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers.ports import free_port

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "bookshelf"
ENTITIES = ["Author", "Book", "Loan", "Shelf"]
TABLES = {"authors", "books", "loans", "shelves"}


@pytest.fixture
def bookshelf(tmp_path: Path) -> Path:
    """A copy of the example app, without build or run leftovers."""
    target = tmp_path / "bookshelf"
    shutil.copytree(
        EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__", "instance", "*.egg-info")
    )
    return target


def environment(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DB_CONNECTION_STRING", "FLASK_", "ENTITYDB_TEST_URL", "PYTEST_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def flask(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "bookshelf", *args],
        cwd=cwd,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def demo_commands() -> list[list[str]]:
    """The ``flask`` commands of ``scripts/demo``, as argument lists."""
    commands = []
    for line in (ROOT / "scripts" / "demo").read_text().splitlines():
        match = re.search(r'/\.venv/bin/flask"? (.*)$', line)
        if match:
            commands.append(match.group(1).replace('"$@"', "").split())
    return commands


def request(url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_demo_runs_on_the_sqlite_default(bookshelf: Path) -> None:
    """What ``scripts/demo`` does, step by step: migrate, serve, read and write."""
    upgrade, run = demo_commands()
    assert upgrade == ["--app", "bookshelf", "db", "upgrade"]
    assert run == ["--app", "bookshelf", "run"]

    result = flask(bookshelf, *upgrade[2:])
    assert result.returncode == 0, result.stderr
    assert "Applied 0001: authors, books, shelves and loans" in result.stdout
    database = bookshelf / "instance" / "entitydb.sqlite3"
    assert database.is_file()  # the embedded default, in the app's instance folder

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with subprocess.Popen(
        [sys.executable, "-m", "flask", *run, "--port", str(port)],
        cwd=bookshelf,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            for _ in range(300):
                try:
                    status, _ = request(f"{base}/api/books")
                    break
                except OSError:
                    assert server.poll() is None, "the demo server exited"
                    time.sleep(0.1)
            assert status == 200
            book = {"title": "Dune", "author": "Frank Herbert"}
            status, body = request(f"{base}/api/books", book)
            assert status == 201, body
            status, body = request(f"{base}/api/books")
            assert json.loads(body)["books"][0]["title"] == "Dune"
            status, page = request(f"{base}/")
            assert status == 200 and "Dune by Frank Herbert" in page
        finally:
            server.terminate()
            log = server.communicate(timeout=30)[1]
    assert f"Running on {base}" in log


def test_migrations_match_the_entities_on_every_backend(
    bookshelf: Path, database_url: str, tmp_path: Path
) -> None:
    """The same app runs against MariaDB and PostgreSQL when DB_CONNECTION_STRING is set,
    and its migrations are found from any working directory (as in the container recipe,
    where the app is installed and the command runs in the user's home)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"DB_CONNECTION_STRING": database_url, "PYTHONPATH": str(bookshelf)}
    for command in (["db", "upgrade"], ["db", "check"]):
        result = flask(elsewhere, *command, **env)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "matches the entities" in result.stdout
    result = flask(bookshelf, "db", "downgrade", "base", **env)
    assert result.returncode == 0, result.stderr
    assert "Reverted 0001" in result.stdout
    result = flask(bookshelf, "db", "upgrade", **env)
    assert result.returncode == 0, result.stderr


def test_example_test_suite_passes_on_every_backend(bookshelf: Path, database_url: str) -> None:
    """The example's own tests (pytest plugin, real migrations) against each database."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            f"--entitydb-url={database_url}",
        ],
        cwd=bookshelf,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b10 passed\b", result.stdout), result.stdout


def test_entities_come_from_the_declared_entry_point(bookshelf: Path, tmp_path: Path) -> None:
    """Installed, the example's entry point is where its entities are found.

    The installation is a ``.dist-info`` folder on ``PYTHONPATH`` made from the example's
    own ``pyproject.toml`` (the test environment must not carry the example's entry point:
    it would apply to every other app in it).
    """
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    if tomllib is not None:
        declared = tomllib.loads(pyproject)["project"]["entry-points"]["flask_entitydb.entities"]
    else:
        declared = {"bookshelf": "bookshelf.entities"}
        assert 'bookshelf = "bookshelf.entities"' in pyproject
    assert declared == {"bookshelf": "bookshelf.entities"}
    site = tmp_path / "site"
    dist_info = site / "bookshelf-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: bookshelf\nVersion: 0.1.0\n")
    lines = [f"{name} = {value}" for name, value in declared.items()]
    (dist_info / "entry_points.txt").write_text(
        "[flask_entitydb.entities]\n" + "\n".join(lines) + "\n"
    )

    result = flask(
        bookshelf, "db", "entities", "--json", PYTHONPATH=f"{site}{os.pathsep}{bookshelf}"
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)["entities"]
    assert sorted(entity["class"] for entity in listed) == ENTITIES
    assert {entity["table"] for entity in listed} == TABLES
    assert {entity["source"] for entity in listed} == {"bookshelf"}
    assert {entity["file"] for entity in listed} == {
        f"bookshelf/entities/{name.lower()}_entity.py" for name in ENTITIES
    }

    # not installed (how scripts/demo runs it), the default package finds the same modules
    result = flask(bookshelf, "db", "entities", "--json")
    listed = json.loads(result.stdout)["entities"]
    assert sorted(entity["class"] for entity in listed) == ENTITIES
    assert {entity["source"] for entity in listed} == {"default"}
