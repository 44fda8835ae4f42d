"""What the journal says about a revision that did not finish, in one line."""

from __future__ import annotations

from flask_entitydb.migrations._journal.entries import Entry
from flask_entitydb.migrations._journal.table import FAILED, INTERRUPTED


def partial_reason(backend: str) -> str:
    """Why a revision of ``backend`` may have committed part of its changes."""
    if backend in {"mysql", "mariadb"}:
        return "MySQL/MariaDB commits each DDL statement at once"
    if backend == "postgresql":
        return "it committed inside an autocommit_block()"
    return "it committed mid-way"


def name_of(revision: str, doc: str | None) -> str:
    """``'r2' (add the index)``."""
    return f"'{revision}'" + (f" ({doc})" if doc else "")


def way_out(revision: str) -> str:
    """What to do about a revision left interrupted or failed."""
    return (
        f"check the database, then run 'flask db repair {revision}' (it runs again) or"
        f" 'flask db repair {revision} --applied' (all of its changes are there), and run the"
        " command again"
    )


def stop_line(entry: Entry, doc: str | None, backend: str, version_state: str) -> str:
    """The error of a revision whose last entry is ``interrupted`` or ``failed``."""
    name = name_of(entry.revision, doc)
    if entry.state == INTERRUPTED:
        what = (
            f"Revision {name} was interrupted: the run of {entry.who} that started it at"
            f" {entry.started()} is gone and did not finish it"
        )
    else:
        error = f": {entry.error}" if entry.error else ""
        what = f"Revision {name} failed in the run of {entry.who} at {entry.started()}{error}"
    if entry.committed_part:
        partial = f"it may have committed part of its changes ({partial_reason(backend)})"
    elif entry.state == FAILED:
        partial = "it may hold a partial change"
    else:
        partial = "what it changed is not known"
    return f"{what}; {partial}, and {version_state}; {way_out(entry.revision)}."


def retry_line(entry: Entry, doc: str | None, backend: str) -> str:
    """The notice of an interrupted revision that committed nothing: it runs again."""
    how = "PostgreSQL rolled it back" if backend == "postgresql" else "its transaction rolled back"
    return (
        f"Revision {name_of(entry.revision, doc)} was interrupted (the run of {entry.who}"
        f" started it at {entry.started()} and is gone); none of it was committed ({how}),"
        " so it runs again now."
    )


def fence_line(revision: str, doc: str | None) -> str:
    """The error of a run that lost the race to start ``revision`` (no lock excluded the
    other run: the journal row did)."""
    return (
        f"Another run started revision {name_of(revision, doc)} at the same moment (the"
        " migration lock did not keep it out; the journal did): nothing of it ran here; check"
        " 'flask db current -v', then run the command again."
    )


class Stopped(Exception):
    """A revision the journal says must not run again before a person has looked; its
    message is finished once the run was rolled back (:meth:`line`)."""

    def __init__(self, template: str) -> None:
        super().__init__(template)
        self.template = template

    def line(self, version_state: str) -> str:
        """The one-line error, with what the version table holds after the rollback."""
        return self.template.replace("{version_state}", version_state)
