"""MySQL/MariaDB statements as the journal sees them: which ones commit the transaction
implicitly (anything but the transactional ones), which write, and whether an error is the
server refusing a schema change (which then changed nothing)."""

from __future__ import annotations

import sqlalchemy as sa

from flask_entitydb.migrations._server_facts import error_code

TRANSACTIONAL_STATEMENTS = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "SET", "SHOW", "WITH", "DO", "VALUES"}
)
"""MySQL statements that do not commit the transaction implicitly (anything else may)."""

READS = frozenset({"SELECT", "SET", "SHOW", "DO", "VALUES"})
"""Of those, the ones that leave nothing for a later implicit commit to commit."""

_DDL = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"})
"""MySQL statements that change the schema and, refused by the server, change nothing
(a stored procedure's ``CALL``, ``COMMIT``, ``LOCK TABLES`` are not among them)."""

_CLIENT_ERRORS = range(2000, 3000)
"""MySQL/MariaDB error numbers of the client library (a lost connection: the statement
may have run on the server); the server's own errors are the others."""


def verb_of(statement: str) -> str:
    """The first word of a statement, upper case (empty for none)."""
    words = statement.lstrip(" \t\r\n(").split(None, 1)
    return words[0].upper() if words else ""


def refused_schema_change(statement: str | None, error: BaseException) -> bool:
    """Whether ``error`` is the server refusing ``statement``, a schema change that
    commits implicitly, which then changed nothing (an error of the server, not of the
    client library or a lost connection: the statement may have run on the server)."""
    if statement is None or verb_of(statement) not in _DDL:
        return False
    if verb_of(statement) == "DROP" and "," in statement:
        return False  # MariaDB drops the tables it can of 'DROP TABLE a, b'
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, sa.exc.DBAPIError) and cause.statement == statement:
            code = error_code(cause)
            return (
                code is not None and code not in _CLIENT_ERRORS and not cause.connection_invalidated
            )
        cause = cause.__cause__ or cause.__context__
    return False
