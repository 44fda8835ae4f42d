"""What ``flask db lint`` needs to know from the text of a raw SQL statement
(``op.execute("...")``): its first keyword, the table it changes, a ``LIMIT``, whether it
has a ``WHERE`` at all. Only these; whether a statement is a hazard is decided by the
server (row estimates, the scratch database), not by the text.
"""

from __future__ import annotations

import re

_STRINGS_AND_COMMENTS = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|--[^\n]*|/\*.*?\*/", re.S)
_MODIFIERS = frozenset(
    ("ONLY", "FROM", "INTO", "LOW_PRIORITY", "HIGH_PRIORITY", "DELAYED", "IGNORE", "QUICK")
)
_LIMIT = re.compile(r"\bLIMIT\s+(\d+)\s*$", re.I)

DATA_KEYWORDS = frozenset(("UPDATE", "DELETE", "INSERT", "REPLACE", "MERGE"))
"""The first keywords of the statements that change rows."""


def _words(sql: str) -> list[str]:
    """The words of ``sql`` outside strings and comments, parentheses split off."""
    bare = _STRINGS_AND_COMMENTS.sub(" ' ' ", sql).replace("`", " ").replace(";", " ")
    return bare.replace("(", " ( ").replace(")", " ) ").replace(",", " , ").split()


def keyword(sql: str) -> str:
    """The first keyword, upper case (``""`` for an empty statement)."""
    words = _words(sql)
    return words[0].upper() if words else ""


def _name_after(words: list[str], index: int) -> str | None:
    """The table name that follows ``words[index]``, skipping modifiers."""
    for word in words[index + 1 :]:
        if word.upper() in _MODIFIERS or word == "(":
            continue
        if word.upper() == "IF" or word.upper() in ("NOT", "EXISTS"):
            continue
        return word.strip('"').split(".")[-1]
    return None


def target_table(sql: str) -> str | None:
    """The table an ``UPDATE``/``DELETE``/``INSERT``/``REPLACE`` changes, or the table of
    an ``ALTER TABLE`` / ``CREATE INDEX ... ON`` / ``DROP INDEX ... ON``; else ``None``."""
    words = _words(sql)
    upper = [word.upper() for word in words]
    if not upper:
        return None
    if upper[0] in DATA_KEYWORDS:
        return _name_after(words, 0)
    if upper[:2] == ["ALTER", "TABLE"]:
        return _name_after(words, 1)
    if upper[0] in ("CREATE", "DROP") and "INDEX" in upper[:4] and "ON" in upper:
        return _name_after(words, upper.index("ON"))
    return None


def source_table(sql: str) -> str | None:
    """The first table an ``INSERT ... SELECT`` reads (after its first ``FROM``)."""
    upper = [word.upper() for word in _words(sql)]
    if "SELECT" not in upper or "FROM" not in upper[upper.index("SELECT") :]:
        return None
    return _name_after(_words(sql), upper.index("FROM", upper.index("SELECT")))


def has_where(sql: str) -> bool:
    """Whether the statement has a ``WHERE`` outside parentheses (a subquery's ``WHERE``
    does not bound the rows of the statement)."""
    depth = 0
    for word in _words(sql):
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth == 0 and word.upper() == "WHERE":
            return True
    return False


def limit(sql: str) -> int | None:
    """The ``LIMIT`` that ends the statement (``UPDATE``/``DELETE ... LIMIT n``), if any."""
    bare = _STRINGS_AND_COMMENTS.sub(" ", sql).strip().rstrip(";").strip()
    if bare.endswith(")"):
        return None
    found = _LIMIT.search(bare)
    return int(found.group(1)) if found else None


def has_algorithm(sql: str) -> bool:
    """Whether an ``ALTER TABLE`` / ``CREATE INDEX`` states its own ``ALGORITHM=``."""
    return re.search(r"\bALGORITHM\s*=", _STRINGS_AND_COMMENTS.sub(" ", sql), re.I) is not None
