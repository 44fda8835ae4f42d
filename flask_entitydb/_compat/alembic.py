"""The private parts of Alembic flask-entitydb relies on, each behind one small function.

Alembic has no public hook for these needs; everything else goes through its public
API. ``tests/test_compat_alembic.py`` checks each one against the installed Alembic, so an
upstream change fails there, by name, rather than somewhere in ``flask db``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import alembic.op
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.script import Script, ScriptDirectory


@contextlib.contextmanager
def statements_rewritten(impl: DefaultImpl, rewrite: Callable[[Any], Any]) -> Iterator[None]:
    """While the block runs, every statement the Alembic ``impl`` executes (online, or
    written as ``--sql`` output) is replaced by ``rewrite(statement)`` first. In a block of
    the same ``rewrite`` already running, nothing more is done.

    Private: ``DefaultImpl._exec``, the one method every operation's statement passes
    through; no public hook sees an offline statement before it is compiled.
    """
    current = impl._exec
    if getattr(current, "_rewrites", None) is rewrite:
        yield
        return
    own = vars(impl).get("_exec")

    def _exec(construct: Any, *args: Any, **kwargs: Any) -> Any:
        return current(rewrite(construct), *args, **kwargs)

    _exec._rewrites = rewrite  # type: ignore[attr-defined]
    impl._exec = _exec  # type: ignore[method-assign]
    try:
        yield
    finally:
        if own is None:
            del impl._exec  # the class's method again
        else:
            impl._exec = own  # type: ignore[method-assign]


@contextlib.contextmanager
def op_proxy_restored() -> Iterator[None]:
    """After the block, ``alembic.op`` is again the ``Operations`` it was before it, if any
    (the public ``Operations.context()`` leaves none installed when it ends, and a migration
    in progress needs its own back).

    Private: the module's ``_proxy`` (the ``Operations`` installed) and
    ``Operations._install_proxy()``.
    """
    outer = getattr(alembic.op, "_proxy", None)
    try:
        yield
    finally:
        if outer is not None:
            outer._install_proxy()


def revision_files(script: ScriptDirectory) -> Iterator[Script]:
    """Every revision file of the folder, loaded but not linked into the revision map (so
    this works when the map cannot be built, for example when a ``down_revision`` names a
    revision no file defines).

    Private: ``ScriptDirectory._load_revisions()``; the public methods all build the map.
    """
    return script._load_revisions()


_reused: ContextVar[tuple[Config, ScriptDirectory] | None] = ContextVar(
    "flask_entitydb_reused_script", default=None
)
_from_config = ScriptDirectory.__dict__["from_config"]  # Alembic's own classmethod
_installed = 0
_installing = threading.Lock()


def _reusing_from_config(cls: type[ScriptDirectory], config: Config) -> ScriptDirectory:
    reused = _reused.get()
    if reused is not None and reused[0] is config:
        return reused[1]
    return _from_config.__func__(cls, config)  # type: ignore[no-any-return]


@contextlib.contextmanager
def script_reused(config: Config, script: ScriptDirectory) -> Iterator[None]:
    """While the block runs, an Alembic command given ``config`` (``command.revision``,
    ``command.upgrade``, ...) works on ``script``, whose revision files are already loaded,
    instead of loading every revision file of the folder again (seconds for 1,000). A
    revision the command writes is added to ``script``'s map by Alembic itself
    (``ScriptDirectory.generate_revision``), so ``script`` stays whole for later readers.
    Other configs, and other threads, are not affected.

    Private: that the commands build their ``ScriptDirectory`` with
    ``ScriptDirectory.from_config(config)``, which is replaced for the block.
    """
    global _installed
    token = _reused.set((config, script))
    with _installing:
        if _installed == 0:
            ScriptDirectory.from_config = classmethod(_reusing_from_config)  # type: ignore[assignment,method-assign]
        _installed += 1
    try:
        yield
    finally:
        with _installing:
            _installed -= 1
            if _installed == 0:
                ScriptDirectory.from_config = _from_config  # type: ignore[method-assign]
        _reused.reset(token)


StepStarting = Callable[[int, int, Any], None]
"""Called with (position from 1, number of steps, the step) as each step starts."""


def steps_announced(migration: Any, starting: StepStarting) -> None:
    """Make the ``MigrationContext`` ``migration`` call ``starting`` just before each step
    of its next ``run_migrations()`` runs (the steps are known once the run begins).

    Private: ``MigrationContext._migrations_fn``, the function that returns the steps
    (``fn`` of its options), which ``run_migrations()`` iterates as it runs them; no public
    hook is called before a step (``on_version_apply`` is called after).
    """
    inner = migration._migrations_fn
    if inner is None:
        return

    def steps(heads: Any, context: Any) -> Iterator[Any]:
        found = list(inner(heads, context))
        for position, step in enumerate(found, 1):
            starting(position, len(found), step)
            yield step

    migration._migrations_fn = steps


def step_revision(step: Any) -> tuple[str, str, bool] | None:
    """The revision id, message and direction (true: up) of a step that runs a revision
    (``None`` for a stamp).

    Private: ``RevisionStep.revision`` (the ``Script``) and ``is_upgrade``.
    """
    script = getattr(step, "revision", None)
    if not isinstance(script, Script):
        return None
    return script.revision, script.doc or "", bool(step.is_upgrade)
