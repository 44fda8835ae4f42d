"""``flask db`` commands against Flask-Migrate, counted in CPU instructions: each command
once under ``valgrind --tool=callgrind`` (the instructions the ``flask`` process
executed, ``Ir``), which no other process on the machine changes; plus the SQL statements
and commits each tool sends (MariaDB), which the instruction count of the client leaves
out.

The apps, entities and revisions are those of ``migrations_bench.py`` (``_migration_apps``).
Every command runs once before it is counted (to write the bytecode caches); the hash seed
is fixed, so a count is the same from run to run within a few hundredths of a percent.
Needs ``valgrind`` (``apt-get install valgrind``); a run takes about 40 s per command and
tool under valgrind.

Run from the repository root::

    python benchmarks/instructions_bench.py                    # SQLite and MariaDB
    python benchmarks/instructions_bench.py --backend sqlite --commands current,upgrade
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import machine_report, markdown_table, say
from _migration_apps import (
    FACTORY,
    create_entity_tables,
    drop_database,
    flask_env,
    init_migrations,
    reset_database,
    write_empty_revision,
    write_project,
    write_revisions,
)
from migrations_bench import database_url
from variants import DEFAULT_MYSQL_URL

TOOLS = ("flask-migrate", "entitydb")
COMMANDS = {
    "help": ["db", "--help"],
    "current": ["db", "current"],
    "upgrade": ["db", "upgrade"],
    "migrate": ["db", "migrate", "-m", "new entity"],
}

_COUNTING = """\
import sys, atexit, sqlalchemy as sa
sent = {"statements": 0, "commits": 0}
sa.event.listen(sa.Engine, "before_cursor_execute", lambda *a: sent.__setitem__(
    "statements", sent["statements"] + 1))
sa.event.listen(sa.Engine, "commit", lambda *a: sent.__setitem__("commits", sent["commits"] + 1))
atexit.register(lambda: print("SENT", sent["statements"], sent["commits"], file=sys.stderr))
sys.argv = ["flask", *sys.argv[1:]]
from flask.cli import main
main()
"""


class Case:
    """One tool's folder and database for one command."""

    def __init__(
        self, backend: str, tool: str, command: str, workdir: Path, args: argparse.Namespace
    ):
        purpose = "upgrade" if command == "upgrade" else "autogen"
        self.tool, self.command, self.workdir = tool, command, workdir
        self.url = database_url(backend, tool, purpose, workdir, args.mysql_url)
        folder = workdir / f"{backend}_{tool}_{purpose}"
        self.versions = folder / "versions"
        if not folder.exists():
            versions = init_migrations(tool, workdir, self.url, folder)
            if purpose == "upgrade":
                write_revisions(versions, args.revisions)
            else:
                write_empty_revision(versions)
                reset_database(self.url)
                create_entity_tables(self.url, workdir)
                env = flask_env(workdir, self.url, folder)
                subprocess.run(
                    [sys.executable, "-m", "flask", "--app", FACTORY[tool], "db", "stamp", "head"],
                    env=env, cwd=workdir, check=True, capture_output=True,
                )  # fmt: skip
        self.env = {**flask_env(workdir, self.url, folder), "PYTHONHASHSEED": "0"}

    def _prepare(self) -> set[Path]:
        if self.command == "upgrade":
            reset_database(self.url)
        return set(self.versions.glob("*.py"))

    def _clean(self, before: set[Path]) -> None:
        for path in set(self.versions.glob("*.py")) - before:
            path.unlink()

    def _run(self, prefix: list[str], program: list[str]) -> str:
        before = self._prepare()
        args = [*program, "--app", FACTORY[self.tool], *COMMANDS[self.command]]
        result = subprocess.run(
            [*prefix, sys.executable, *args], env=self.env, cwd=self.workdir,
            capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        self._clean(before)
        if result.returncode != 0:
            raise RuntimeError(f"{self.tool} {self.command}: {result.stderr[-2000:]}")
        return result.stderr

    def sent(self) -> tuple[int, int]:
        """Statements and commits the command sends (also warms the bytecode caches)."""
        found = re.search(r"^SENT (\d+) (\d+)$", self._run([], ["-c", _COUNTING]), re.M)
        assert found is not None
        return int(found.group(1)), int(found.group(2))

    def instructions(self) -> int:
        """The instructions the command's process executes, counted by callgrind."""
        err = self._run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"], ["-m", "flask"]
        )
        found = re.search(r"Collected : (\d+)", err)
        assert found is not None, err[-2000:]
        return int(found.group(1))


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> str:
    rows = []
    urls: set[str] = set()
    try:
        for command in args.commands.split(","):
            counts = {}
            for tool in TOOLS:
                case = Case(backend, tool, command, workdir, args)
                urls.add(case.url)
                statements, commits = case.sent()
                say(f"{backend} {command} {tool}: counting instructions")
                counts[tool] = (case.instructions(), statements, commits)
            fm, ed = counts["flask-migrate"], counts["entitydb"]
            rows.append([
                f"`flask db {' '.join(COMMANDS[command][1:])}`",
                f"{fm[0] / 1e9:.3f} G", f"{ed[0] / 1e9:.3f} G", f"{ed[0] / fm[0]:.3f}x",
                f"{fm[1]} / {fm[2]}", f"{ed[1]} / {ed[2]}",
            ])  # fmt: skip
    finally:
        for url in urls:
            drop_database(url)
    headers = [
        "command",
        "flask-migrate: instructions",
        "entitydb: instructions",
        "entitydb / flask-migrate",
        "flask-migrate: statements / commits",
        "entitydb: statements / commits",
    ]
    return f"### {backend}\n\n" + markdown_table(headers, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "mysql"), action="append")
    parser.add_argument("--commands", default="help,current,upgrade,migrate")
    parser.add_argument("--revisions", type=int, default=50)
    parser.add_argument("--entities", type=int, default=80)
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed: apt-get install valgrind")
    print("## `flask db` commands against Flask-Migrate, in instructions\n")
    print("\n".join(machine_report()) + "\n")
    print(f"Command: `python benchmarks/instructions_bench.py {' '.join(argv or sys.argv[1:])}`\n")
    with tempfile.TemporaryDirectory(prefix="edb-irbench-") as tmp:
        workdir = Path(tmp)
        write_project(workdir, args.entities)
        for backend in args.backend or ["sqlite", "mysql"]:
            print(run_backend(backend, args, workdir) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
