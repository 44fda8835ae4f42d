"""``flask db lint --all`` on histories shaped like real Flask apps' (the revisions
Flask-Migrate wrote for them over the years, then run by flask-entitydb): data revisions
with ``sa.table()`` and ``op.bulk_insert``, Core statements in ``op.execute``, enum
changes, widened columns, a unique index added to an existing table. Every revision file
Alembic can run is judged or reported unreadable in one line, never a traceback."""

from __future__ import annotations

import json

from helpers.migration_apps import AppPackage, ok

ROLES = """
op.create_table(
    "roles",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=True),
    sa.Column("default", sa.Boolean, nullable=True),
    sa.Column("permissions", sa.Integer, nullable=True),
)
op.create_table(
    "users",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(128), nullable=True),
    sa.Column("email", sa.String(120), nullable=True),
    sa.Column("locale", sa.String(6), nullable=True),
    sa.Column("status", sa.Enum("active", "banned", name="user_status"), nullable=True),
    sa.Column("role_id", sa.Integer, sa.ForeignKey("roles.id"), nullable=True),
)
"""
SEED = """
roles = sa.table("roles", sa.column("id"), sa.column("name"), sa.column("default"))
op.bulk_insert(roles, [
    {"id": 1, "name": "User", "default": True},
    {"id": 2, "name": "Moderator", "default": False},
])
op.execute(roles.update().where(roles.c.name == op.inline_literal("User")).values(default=False))
"""
UNIQUE_EMAIL = 'op.create_index("ix_users_email", "users", ["email"], unique=True)'
WIDEN = """
op.alter_column("users", "username", type_=sa.String(256), existing_type=sa.String(128))
op.alter_column("users", "locale", type_=sa.String(8), existing_type=sa.String(6))
"""
ENUM = """
op.alter_column(
    "users",
    "status",
    type_=sa.Enum("active", "banned", "suspended", name="user_status"),
    existing_type=sa.Enum("active", "banned", name="user_status"),
)
"""


def _history(package: AppPackage) -> None:
    ok(package.cli("init"))
    package.write_revision("r1", None, ROLES)
    package.write_revision("r2", "r1", SEED)
    package.write_revision("r3", "r2", UNIQUE_EMAIL)
    package.write_revision("r4", "r3", WIDEN)


def _lint(package: AppPackage, *args: str) -> tuple[int, dict, str]:
    result = package.cli("lint", "--json", *args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output), result.output


def test_whole_history(package: AppPackage, backend: str) -> None:
    """The crash (a data revision of untyped ``sa.column()`` values), the missed index
    (squawk saw the whole history as one transaction, so the table was "new") and the
    widenings judged by rule after an unreadable revision: judged by the server instead."""
    _history(package)
    package.write_revision("r5", "r4", ENUM)
    code, report, output = _lint(package, "--all")
    found = [(f["revision"], f["rule"], f["operation"]) for f in report["findings"]]
    expected = []
    if backend == "postgresql":
        expected.append(
            (
                "r3",
                "create-index-not-concurrently",
                "op.create_index('ix_users_email', 'users', ...)",
            )
        )
    if backend == "sqlite":  # batch mode copies the table for any type change
        expected += [
            ("r4", "alter-column-type", "op.alter_column('users', 'username', type_=VARCHAR(256))"),
            ("r4", "alter-column-type", "op.alter_column('users', 'locale', type_=VARCHAR(8))"),
            (
                "r5",
                "alter-column-type",
                "op.alter_column('users', 'status', type_=Enum('active', 'banned', 'suspended',"
                " name='user_status'))",
            ),
        ]
    assert found == expected, output
    assert report["notes"] == [], output
    assert code == (1 if expected else 0)


def test_one_unreadable_revision_leaves_the_rest_judged(package: AppPackage, backend: str) -> None:
    """A revision that reads the database (not readable without one) is reported in one
    line; what it did before the read still builds the scratch database, the widenings
    after it are judged by the server, and only an operation on what the unread part
    created falls back to the rule, with a note that says so."""
    ok(package.cli("init"))
    package.write_revision("r1", None, ROLES)
    package.write_revision(
        "r2",
        "r1",
        """
        op.add_column("users", sa.Column("about", sa.String(100), nullable=True))
        ids = [row[0] for row in op.get_bind().execute(sa.text("SELECT id FROM roles")).fetchall()]
        op.create_table("audit", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("what", sa.String(20)))
        """,
    )
    package.write_revision("r3", "r2", WIDEN)
    package.write_revision(
        "r4",
        "r3",
        """
        op.alter_column("users", "about", type_=sa.String(200), existing_type=sa.String(100))
        op.alter_column("audit", "what", type_=sa.String(40), existing_type=sa.String(20))
        """,
    )
    code, report, output = _lint(package, "--all")
    found = [(f["revision"], f["line"], f["rule"]) for f in report["findings"]]
    if backend == "sqlite":
        assert ("r3", 15, "alter-column-type") in found, output
        return
    assert found == [("r2", 16, "not-recorded"), ("r4", 16, "alter-column-type")], output
    assert report["findings"][0]["effect"].startswith(
        "could not be read without a database (AttributeError: "
    )
    assert len(report["notes"]) == 1, output
    assert report["notes"][0].startswith(
        "the server could not try revision 'r4' line 16 on the scratch database ("
    ), output
    assert report["notes"][0].endswith("); it is judged by rule"), output
    assert code == 1
