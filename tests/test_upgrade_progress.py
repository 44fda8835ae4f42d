"""``flask db upgrade`` names each revision as it starts, with a running count (``[2/3]``):
on a terminal one line per revision that its ``Applied`` line replaces, otherwise plain
lines; the API hands the same to ``on_start``."""

from __future__ import annotations

import os
import pty
import subprocess

from helpers.migration_apps import FLASK, AppPackage, ok

from flask_entitydb import migrations
from flask_entitydb.migrations import AppliedRevision, StartedRevision


def _three(package: AppPackage) -> None:
    ok(package.cli("init"))
    package.write_revision(
        "a1", None, 'op.create_table("t1", sa.Column("id", sa.Integer, primary_key=True))'
    )
    package.write_revision(
        "b2", "a1", 'op.create_table("t2", sa.Column("id", sa.Integer, primary_key=True))'
    )
    package.write_revision(
        "c3", "b2", 'op.create_table("t3", sa.Column("id", sa.Integer, primary_key=True))'
    )


def test_plain_lines_name_each_revision_before_it_runs(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    _three(package)
    result = package.run("upgrade")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "ppl" in line]
    assert [line.split(" (")[0] for line in lines] == [
        "[1/3] Applying a1: revision a1",
        "Applied a1: revision a1",
        "[2/3] Applying b2: revision b2",
        "Applied b2: revision b2",
        "[3/3] Applying c3: revision c3",
        "Applied c3: revision c3",
    ], result.stdout
    assert "\r" not in result.stdout and "\x1b" not in result.stdout

    down = package.run("downgrade", "a1")
    assert down.returncode == 0, down.stderr
    assert "[1/2] Reverting c3: revision c3\n" in down.stdout
    assert "[2/2] Reverting b2: revision b2\n" in down.stdout


def test_on_a_terminal_the_count_line_is_replaced(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    _three(package)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [FLASK, "db", "upgrade"],
        env=package.env(),
        cwd=package.src,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.DEVNULL,
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=120) == 0
    os.close(leader)
    text = output.decode()
    assert "[2/3] Applying b2: revision b2 ...\r\x1b[K[2/3] Applied b2: revision b2 (" in text
    assert "[3/3] Applied c3: revision c3 (" in text


def test_the_api_reports_each_start_with_its_place(sqlite_package: AppPackage) -> None:
    package = sqlite_package
    _three(package)
    events: list[StartedRevision | AppliedRevision] = []
    app = package.create_app()
    with app.app_context():
        applied = migrations.upgrade(on_start=events.append, on_apply=events.append)
    assert [(type(e).__name__, e.revision, e.position, e.total) for e in events] == [
        ("StartedRevision", "a1", 1, 3),
        ("AppliedRevision", "a1", 1, 3),
        ("StartedRevision", "b2", 2, 3),
        ("AppliedRevision", "b2", 2, 3),
        ("StartedRevision", "c3", 3, 3),
        ("AppliedRevision", "c3", 3, 3),
    ]
    assert [a.revision for a in applied] == ["a1", "b2", "c3"]
    assert events[0].describe() == "[1/3] Applying a1: revision a1"
