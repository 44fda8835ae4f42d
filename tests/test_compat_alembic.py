"""The Alembic behaviour flask-entitydb relies on beyond its documented API
(``flask_entitydb._compat.alembic``): each test fails, by name, when the installed Alembic
changes what the adapter uses."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import alembic.op
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.ddl.base import AlterTable
from alembic.ddl.impl import DefaultImpl
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from flask_entitydb._compat.alembic import (
    op_proxy_restored,
    revision_files,
    script_reused,
    statements_rewritten,
    step_revision,
    steps_announced,
)


def _offline(dialect: str = "mysql") -> tuple[MigrationContext, io.StringIO]:
    output = io.StringIO()
    context = MigrationContext.configure(
        dialect_name=dialect, opts={"as_sql": True, "output_buffer": output}
    )
    return context, output


def test_every_offline_statement_passes_through_impl_exec() -> None:
    """``DefaultImpl._exec`` is a method every operation's statement goes through before
    it is compiled, offline (``--sql``) too."""
    assert callable(getattr(DefaultImpl, "_exec", None))
    context, output = _offline()
    seen: list[Any] = []

    def rewrite(construct: Any) -> Any:
        seen.append(construct)
        return sa.text("SELECT 'rewritten'")

    with statements_rewritten(context.impl, rewrite):
        Operations(context).add_column("users", sa.Column("age", sa.Integer()))
    assert len(seen) == 1 and isinstance(seen[0], AlterTable)
    assert "SELECT 'rewritten'" in output.getvalue()
    assert "_exec" not in vars(context.impl)  # the class's method again
    Operations(context).drop_column("users", "age")
    assert len(seen) == 1
    assert "DROP COLUMN age" in output.getvalue()


def test_every_online_statement_passes_through_impl_exec() -> None:
    engine = sa.create_engine("sqlite://")
    seen: list[Any] = []

    def rewrite(construct: Any) -> Any:
        seen.append(construct)
        return construct

    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        with statements_rewritten(context.impl, rewrite):
            Operations(context).create_table("users", sa.Column("id", sa.Integer()))
            with statements_rewritten(context.impl, rewrite):  # nested: rewritten once
                Operations(context).execute("INSERT INTO users (id) VALUES (1)")
        assert len(seen) == 2 and isinstance(seen[0], sa.schema.CreateTable)
        assert connection.exec_driver_sql("SELECT id FROM users").scalar() == 1
    engine.dispose()


def test_a_replaced_impl_exec_is_put_back() -> None:
    context, _output = _offline()
    own = context.impl._exec
    context.impl._exec = own  # type: ignore[method-assign]
    with statements_rewritten(context.impl, lambda construct: construct):
        assert context.impl._exec is not own
    assert vars(context.impl)["_exec"] is own


def test_the_op_module_proxies_the_operations_installed() -> None:
    """``alembic.op._proxy`` is the ``Operations`` that ``Operations.context()`` installed,
    ``_install_proxy()`` installs one again, and ``op.<name>()`` looks the method up on it
    when called (so the recorder's replacement ``invoke`` is the one used)."""
    outer_context, _ = _offline()
    inner_context, _ = _offline()
    with Operations.context(outer_context) as outer:
        assert alembic.op._proxy is outer  # type: ignore[attr-defined]
        with op_proxy_restored(), Operations.context(inner_context) as inner:
            assert alembic.op._proxy is inner  # type: ignore[attr-defined]
            assert alembic.op.get_context() is inner_context
        assert alembic.op._proxy is outer  # type: ignore[attr-defined]
        assert alembic.op.get_context() is outer_context
    assert alembic.op._proxy is None  # type: ignore[attr-defined]
    with op_proxy_restored(), Operations.context(inner_context):
        pass
    assert alembic.op._proxy is None  # type: ignore[attr-defined]


def test_operations_and_batch_operations_run_through_invoke() -> None:
    """Every ``op.<operation>()`` and ``batch_op.<operation>()`` ends in the ``invoke``
    of its operations object (Alembic's operation plugin design), so replacing ``invoke``
    on the instance records them."""
    context, output = _offline()
    invoked: list[ops.MigrateOperation] = []
    with Operations.context(context) as proxy:
        proxy.invoke = invoked.append  # type: ignore[method-assign,assignment]
        alembic.op.add_column("users", sa.Column("age", sa.Integer()))
        with proxy.batch_alter_table("users") as batch:
            batch.invoke = invoked.append  # type: ignore[method-assign,assignment]
            batch.drop_column("age")
    assert [type(operation) for operation in invoked] == [ops.AddColumnOp, ops.DropColumnOp]
    assert output.getvalue() == ""


def test_revision_files_are_loaded_without_the_revision_map(tmp_path: Path) -> None:
    """``ScriptDirectory._load_revisions()`` yields each revision file's ``Script`` even
    when the map cannot be built (a ``down_revision`` no file defines)."""
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "c0ffee_orphan.py").write_text(
        'revision = "c0ffee"\ndown_revision = "missing"\ndepends_on = None\n'
        "branch_labels = None\n\ndef upgrade():\n    pass\n",
        encoding="utf-8",
    )
    script = ScriptDirectory(str(tmp_path))
    found = list(revision_files(script))
    assert [(s.revision, s.down_revision) for s in found] == [("c0ffee", "missing")]
    assert Path(found[0].path).resolve() == (versions / "c0ffee_orphan.py").resolve()
    assert found[0].dependencies is None


def test_commands_use_the_script_directory_given(tmp_path: Path) -> None:
    """Alembic's commands build their ``ScriptDirectory`` with
    ``ScriptDirectory.from_config(config)``: inside ``script_reused`` they use the one
    given (its revisions not loaded again), and the revision ``command.revision`` writes is
    added to its map; other configs, and everything after the block, are unaffected."""
    folder = tmp_path / "migrations"
    config = Config(str(tmp_path / "alembic.ini"), stdout=io.StringIO())
    config.set_main_option("script_location", str(folder))
    command.init(config, str(folder))
    command.revision(config, message="first", rev_id="aaaa")
    script = ScriptDirectory.from_config(config)
    assert script.get_current_head() == "aaaa"
    (folder / "versions" / "zzzz_later.py").write_text(  # only the files know it
        'revision = "zzzz"\ndown_revision = "aaaa"\ndepends_on = None\n'
        "branch_labels = None\n\ndef upgrade():\n    pass\n",
        encoding="utf-8",
    )
    other = Config(stdout=io.StringIO())
    other.set_main_option("script_location", str(folder))
    with script_reused(config, script):
        assert ScriptDirectory.from_config(config) is script
        assert ScriptDirectory.from_config(other).get_heads() == ["zzzz"]  # from the files
        written = command.revision(config, message="second", rev_id="bbbb")
    assert not isinstance(written, list) and written is not None
    assert written.down_revision == "aaaa"  # the head of the map given, not the files' zzzz
    assert script.get_revision("bbbb") is written
    assert script.get_heads() == ["bbbb"]
    assert sorted(ScriptDirectory.from_config(config).get_heads()) == ["bbbb", "zzzz"]
    assert ScriptDirectory.from_config(config) is not script


def test_each_step_is_announced_before_it_runs(tmp_path: Path) -> None:
    """``MigrationContext._migrations_fn`` gives the steps ``run_migrations()`` runs, one by
    one as it iterates them; a ``RevisionStep`` has the ``Script`` as ``revision``."""
    versions = tmp_path / "versions"
    versions.mkdir()
    for rev, down in (("a1", None), ("b2", "a1")):
        (versions / f"{rev}_x.py").write_text(
            f'"""message {rev}"""\nrevision = "{rev}"\ndown_revision = {down!r}\n'
            "branch_labels = None\ndepends_on = None\n\ndef upgrade():\n    pass\n",
            encoding="utf-8",
        )
    script = ScriptDirectory(str(tmp_path))
    engine = sa.create_engine("sqlite://")
    seen: list[Any] = []
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"fn": lambda heads, ctx: script._upgrade_revs("head", heads), "script": script},
        )
        steps_announced(
            context,
            lambda position, total, step: seen.append(
                (position, total, step_revision(step), context.get_current_heads())
            ),
        )
        context.run_migrations()
        assert context.get_current_heads() == ("b2",)
    assert seen == [
        (1, 2, ("a1", "message a1", True), ()),
        (2, 2, ("b2", "message b2", True), ("a1",)),
    ]
