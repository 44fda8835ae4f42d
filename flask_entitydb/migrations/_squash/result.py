"""What ``flask db squash`` returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SquashResult:
    """The squashed revision of one bind, and the outcome of its equality proof."""

    revision: str
    """Its id: the id of the last revision it replaces (``--to``)."""
    replaces: tuple[str, ...]
    """The revisions it replaces, oldest first."""
    path: str
    """Where it was written (or would be: dry run, or the proof failed)."""
    source: str
    """The file's text."""
    written: bool
    """Whether the file was written: the proof passed and it was not a dry run."""
    differences: tuple[str, ...]
    """What differs between the schema after the history and after the squashed revision,
    one line each (empty: the proof passed)."""
    dialect: str
    """The backend both schemas were built on (the app's)."""
    bind: str = "default"
    """The bind's name."""

    @property
    def ok(self) -> bool:
        """Whether the proof passed."""
        return not self.differences
