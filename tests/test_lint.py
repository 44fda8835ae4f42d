"""``flask db lint``: what it finds in revisions, where, and how it reports it, on SQLite,
MariaDB and PostgreSQL (the hazards themselves are demonstrated in test_lint_hazards.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from migration_apps import AppPackage, make_package, ok

CREATE = """
op.create_table(
    "users",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(80), nullable=True),
    sa.Column("age", sa.Integer, nullable=True),
)
op.create_index("ix_users_name", "users", ["name"])
"""


@pytest.fixture
def package(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppPackage]:
    yield from make_package(tmp_path, database_url, monkeypatch)


def _lint(package: AppPackage, *args: str) -> tuple[int, dict]:
    result = package.cli("lint", "--json", *args)
    return result.exit_code, json.loads(result.output)


def _rules(report: dict) -> list[tuple[str, int, bool]]:
    return [(f["rule"], f["line"], f["allowed"]) for f in report["findings"]]


def test_new_tables_and_indexes_are_clean(package: AppPackage) -> None:
    ok(package.cli("init"))
    package.write_revision("a1", None, CREATE)
    code, report = _lint(package)
    assert report["findings"] == [], report
    assert report["revisions"] == ["a1"]
    assert code == 0


def test_every_backend_rules_with_file_and_line(package: AppPackage, backend: str) -> None:
    ok(package.cli("init"))
    package.write_revision("a1", None, CREATE)
    path = package.write_revision(
        "b2",
        "a1",
        """
        op.drop_column("users", "age")
        op.add_column("users", sa.Column("email", sa.String(100), nullable=False))
        op.execute("UPDATE users SET name = 'x'")
        op.execute("UPDATE users SET name = 'y' WHERE id = 1")
        with op.batch_alter_table("users") as batch_op:
            batch_op.alter_column("name", new_column_name="full_name", existing_type=sa.String(80))
        """,
    )
    ok(package.cli("upgrade", "a1"))
    code, report = _lint(package)
    assert code == 1
    assert report["revisions"] == ["b2"]
    assert _rules(report) == [
        ("drop-column", 15, False),
        ("add-not-null-column", 16, False),
        ("data-migration", 17, False),
        ("rename-column", 20, False),
    ], json.dumps(report)
    assert all(f["path"] == str(path) for f in report["findings"])
