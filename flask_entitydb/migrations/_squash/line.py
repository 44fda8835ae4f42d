"""The revisions ``flask db squash --to REVISION`` replaces: REVISION and every revision
before it, which must be one line of history (no merge, no branch off it, no
``depends_on``), so that a database is either before REVISION on that line, or at or
past it."""

from __future__ import annotations

import hashlib

from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from flask_entitydb.errors import MigrationError


def _ids(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)  # type: ignore[attr-defined]


def target(script: ScriptDirectory, to: str | None) -> Script:
    """The revision to squash up to: ``to``, else the one head.

    :raises MigrationError: unknown or ambiguous revision, several heads, no revision.
    """
    if to is None:
        heads = script.get_heads()
        if not heads:
            raise MigrationError(
                "There is no revision to squash; write some with 'flask db migrate' first."
            )
        if len(heads) > 1:
            names = ", ".join(f"'{h}'" for h in sorted(heads))
            raise MigrationError(
                f"The history has several heads ({names}); name the revision to squash up"
                " to with '--to REVISION', or merge them first with 'flask db merge'."
            )
        to = heads[0]
    try:
        found = script.get_revision(to)
    except (CommandError, RevisionError) as error:
        raise MigrationError(
            f"Unknown revision '{to}' ({error}); see 'flask db history' for the revisions."
        ) from None
    if found is None:
        raise MigrationError(f"'{to}' is not a revision to squash up to; name a revision id.")
    return found


def replaced(script: ScriptDirectory, top: Script) -> list[Script]:
    """``top`` and the revisions before it, oldest first.

    :raises MigrationError: they are not one line of history.
    """
    line = [top]
    current = top
    while True:
        if current.dependencies:
            needs = ", ".join(f"'{d}'" for d in _ids(current.dependencies))
            raise MigrationError(
                f"The revision '{current.revision}' depends on {needs} ('depends_on'), so"
                f" the history up to '{top.revision}' is not a single line; squash up to a"
                " revision before it."
            )
        downs = _ids(current.down_revision)
        if len(downs) > 1:
            merged = ", ".join(f"'{d}'" for d in downs)
            raise MigrationError(
                f"The revision '{current.revision}' merges {merged}, so the history up to"
                f" '{top.revision}' is not a single line; squash up to a revision before"
                " the merge."
            )
        if not downs:
            break
        parent = script.get_revision(downs[0])
        assert parent is not None
        others = sorted(set(parent.nextrev) - {current.revision})
        if others:
            branches = ", ".join(f"'{o}'" for o in others)
            raise MigrationError(
                f"The revision '{parent.revision}' branches (also followed by {branches}),"
                f" so the history up to '{top.revision}' is not a single line; squash up to"
                f" '{parent.revision}' or a revision before it, or merge the branches first."
            )
        line.append(parent)
        current = parent
    return list(reversed(line))


def fingerprint(scripts: list[Script]) -> str:
    """The SHA-256 of the revisions' files, in order: it changes when one of them does."""
    digest = hashlib.sha256()
    for script in scripts:
        with open(script.path, "rb") as file:
            digest.update(file.read())
    return digest.hexdigest()
