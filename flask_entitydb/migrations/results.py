"""The values the migrations API returns: plain, frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["upgrade", "downgrade", "stamp"]


@dataclass(frozen=True)
class AppliedRevision:
    """One step of :func:`~flask_entitydb.migrations.upgrade`,
    :func:`~flask_entitydb.migrations.downgrade` or :func:`~flask_entitydb.migrations.stamp`.
    """

    revision: str
    """The revision applied (upgrade), reverted (downgrade) or stamped; ``"base"`` when a
    stamp empties the version table."""
    message: str
    """The revision's message (first paragraph of its docstring)."""
    action: Action
    elapsed: float
    """Seconds the step took, including the version table update."""
    position: int = 0
    """Its place among the run's steps, from 1 (``0``: not known)."""
    total: int = 0
    """The number of steps of the run (``0``: not known)."""

    def describe(self) -> str:
        """One line for people, for example ``Applied 3f2a1b9c0d1e: add users (0.12 s)``."""
        verb = {"upgrade": "Applied", "downgrade": "Reverted", "stamp": "Stamped"}[self.action]
        message = f": {self.message}" if self.message else ""
        return f"{verb} {self.revision}{message} ({self.elapsed:.2f} s)"


@dataclass(frozen=True)
class StartedRevision:
    """A revision :func:`~flask_entitydb.migrations.upgrade` or
    :func:`~flask_entitydb.migrations.downgrade` is starting to run."""

    revision: str
    message: str
    """The revision's message (first paragraph of its docstring)."""
    action: Literal["upgrade", "downgrade"]
    position: int
    """Its place among the run's steps, from 1."""
    total: int
    """The number of steps of the run."""

    @property
    def count(self) -> str:
        """The running count, for example ``[37/200]``."""
        return f"[{self.position}/{self.total}]"

    def describe(self) -> str:
        """One line for people, for example ``[3/50] Applying 3f2a1b9c0d1e: add users``."""
        verb = "Applying" if self.action == "upgrade" else "Reverting"
        message = f": {self.message}" if self.message else ""
        return f"{self.count} {verb} {self.revision}{message}"


@dataclass(frozen=True)
class RevisionInfo:
    """A revision file of the migrations folder."""

    revision: str
    message: str
    """First paragraph of the revision's docstring."""
    down_revisions: tuple[str, ...]
    """The revisions it follows (none for the first revision, two or more for a merge)."""
    branch_labels: tuple[str, ...]
    depends_on: tuple[str, ...]
    path: str
    """Absolute path of the revision file."""
    is_head: bool
    is_current: bool
    """Whether the database is at this revision; only known to functions that look at the
    database (:func:`~flask_entitydb.migrations.current`, ``history(indicate_current=True)``,
    ``show("current")``), ``False`` elsewhere."""
    next_revisions: tuple[str, ...]
    """The revisions that follow it (two or more at a branch point)."""
    line: str
    """Alembic's one-line summary, as the Alembic command of the same name prints it
    (and Flask-Migrate, so scripts parsing it keep working): ``834b1a697901 (head)`` from
    :func:`~flask_entitydb.migrations.current` and
    :func:`~flask_entitydb.migrations.heads`, ``<base> -> 834b1a697901 (head), users`` from
    :func:`~flask_entitydb.migrations.history` and the others."""
    details: str
    """Alembic's verbose, multi-line description, as ``alembic show`` prints it."""
    journal: str = ""
    """Every attempt of the revision in the migration journal, one line each, oldest
    first: when, by whom, how long and how it ended (applied, failed, rolled back,
    interrupted, repaired; with the error) (``history(journal=True)``,
    ``current(journal=True)``); empty when not asked or not recorded."""


@dataclass(frozen=True)
class NewRevision:
    """A revision file written by :func:`~flask_entitydb.migrations.revision`,
    :func:`~flask_entitydb.migrations.migrate` or :func:`~flask_entitydb.migrations.merge`."""

    revision: str
    message: str
    path: str
    """Absolute path of the new file."""
    changes: tuple[str, ...] = ()
    """The changes autogenerate found, in words (empty for a hand-written revision)."""
    drops: tuple[str, ...] = ()
    """The table and column drops among :attr:`changes`: applying the revision deletes
    their data."""


@dataclass(frozen=True)
class CheckResult:
    """What :func:`~flask_entitydb.migrations.check` found."""

    current: tuple[str, ...]
    """The revisions the database is at (empty: no revision applied)."""
    heads: tuple[str, ...]
    """The head revisions of the migrations folder."""
    unapplied: tuple[RevisionInfo, ...] = ()
    """Revisions not applied to the database, oldest first."""
    changes: tuple[str, ...] = ()
    """Differences between the entities and the database that no revision covers, in
    words. Only compared when the database is at head."""
    undiscovered: tuple[str, ...] = ()
    """``*_entity.py`` files of the project that discovery did not import (quoted, for
    people): their entities were not compared."""
    edited: tuple[str, ...] = ()
    """Applied revisions whose file was edited after they were applied (one line each,
    naming the file), from the checksums of the migration journal."""

    @property
    def ok(self) -> bool:
        """``True`` when the database is at head and matches the entities, no entity
        module went undiscovered and no applied revision was edited."""
        return (
            not self.unapplied
            and not self.changes
            and not self.undiscovered
            and not self.edited
            and set(self.current) == set(self.heads)
        )

    def describe(self) -> list[str]:
        """The result as lines for people."""
        if self.ok:
            at = ", ".join(self.heads) or "base"
            return [f"The database is at head ({at}) and matches the entities."]
        lines: list[str] = list(self.edited)
        if self.unapplied or set(self.current) != set(self.heads):
            count = len(self.unapplied)
            noun = "revision is" if count == 1 else "revisions are"
            lines.append(
                f"{count} {noun} not applied to the database"
                " (run 'flask db upgrade', then 'flask db check' again to compare the"
                " entities):"
            )
            lines += [
                f"  - {info.revision}: {info.message}".rstrip(": ") for info in self.unapplied
            ]
        if self.changes:
            lines.append(
                "The entities differ from the database and no revision covers it"
                " (run 'flask db migrate'):"
            )
            lines += [f"  - {change}" for change in self.changes]
        if self.undiscovered:
            lines.append(
                "Entity modules that discovery did not import, so their entities were not"
                " compared (add their package to 'ENTITYDB_ENTITY_PACKAGES', which replaces"
                " the default search, so list the packages searched now too; or rename a"
                " file that is not an entity module):"
            )
            lines += [f"  - {file}" for file in self.undiscovered]
        return lines


@dataclass(frozen=True)
class EnvReplacement:
    """What :func:`~flask_entitydb.migrations.replace_env` (``flask db init
    --replace-env``) did."""

    path: str
    """The new ``env.py``."""
    backup: str | None
    """Where the old ``env.py`` is kept (``env.py.bak``); ``None`` when there was none, or
    it already was flask-entitydb's."""
    removed: tuple[str, ...]
    """What the old ``env.py`` configured beyond Flask-Migrate's stock file, each with
    flask-entitydb's equivalent; the new ``env.py`` does not carry these over."""
    ini_added: tuple[str, ...]
    """The settings added to ``alembic.ini`` so Alembic can be run directly
    (``script_location``, ``prepend_sys_path``, ...); empty when it had them."""


@dataclass(frozen=True)
class RepairResult:
    """What ``flask db repair`` did."""

    revisions: tuple[str, ...]
    """The revisions repaired (or whose checksums were accepted)."""
    state: str
    """What the journal says of them now: ``rolled_back`` (they run again), ``applied``
    (also stamped in the version table) or ``checksums`` (the edited files accepted)."""

    def describe(self) -> str:
        """One line saying what changed."""
        names = ", ".join(f"'{rev}'" for rev in self.revisions)
        if self.state == "checksums":
            if not self.revisions:
                return "Nothing to repair: every applied revision matches its checksum."
            return f"Accepted the edited file(s) of {names}: their checksums are recorded now."
        if self.state == "applied":
            return f"Marked {names} as applied (journal and version table); nothing was run."
        return f"Marked {names} as rolled back: the next 'flask db upgrade' runs it again."
