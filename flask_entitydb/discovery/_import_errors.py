"""The error for a module that fails to import: which file, which line, what it raised,
and which module's own code raised it when that is another one (a helper it imports)."""

from __future__ import annotations

import importlib.util
from types import TracebackType

from flask_entitydb.discovery._files import ENTITY_SUFFIX, module_file, relative_file
from flask_entitydb.errors import EntityDiscoveryError


def import_failure(name: str, exc: BaseException) -> EntityDiscoveryError:
    """The error for a failed import of module ``name``; names the module whose code
    raised too, when that is another one (a helper it imports, say)."""
    kind = "entity module" if name.endswith(ENTITY_SUFFIX) else "module"
    failed = _failed_module(exc, name)
    if failed == name:
        return EntityDiscoveryError(f"Cannot import {kind} {_describe_failure(name, exc)}.")
    return EntityDiscoveryError(
        f"Cannot import {kind} '{module_file(name)}': {_describe_failure(failed, exc)}."
    )


def _failed_module(exc: BaseException, fallback: str) -> str:
    """The module whose own code raised ``exc`` (the innermost frame of a module body)."""
    tb: TracebackType | None = exc.__traceback__
    failed = fallback
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "<module>":
            failed = str(tb.tb_frame.f_globals.get("__name__", failed))
        tb = tb.tb_next
    return failed


def _describe_failure(name: str, exc: BaseException) -> str:
    """Where in module ``name`` ``exc`` happened, and what it was."""
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        spec = None
    origin = spec.origin if spec is not None else None
    file = relative_file(
        name, origin, spec is not None and spec.submodule_search_locations is not None
    )
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" if exc.filename == origin else f"'{exc.filename}'"
        if exc.filename != origin and exc.lineno is not None:
            where += f", line {exc.lineno}"
        return f"'{file}' ({where}): SyntaxError: {exc.msg}"
    line = _line_in(exc, origin)
    where = f" (line {line})" if line is not None else ""
    return f"'{file}'{where}: {_first_line(exc)}"


def _line_in(exc: BaseException, path: str | None) -> int | None:
    """The line of file ``path`` that was running when ``exc`` was raised (the
    innermost, if several)."""
    line = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if path is not None and tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` of ``exc``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
