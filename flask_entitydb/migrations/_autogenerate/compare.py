"""Autogenerate comparison hooks: no false positives right after ``upgrade``, and no missed
changes that users hit.

Pass them to Alembic's ``context.configure``::

    context.configure(
        ...,
        compare_type=compare.compare_type,
        compare_server_default=compare.compare_server_default,
    )

Each hook answers ``False`` (same, stop comparing), ``True`` (changed) or ``None`` (no
opinion: Alembic's own comparison decides). They only answer where Alembic is known to be
wrong, or where it differs between the Alembic versions flask-entitydb supports:

* MySQL/MariaDB store ``Boolean`` as ``TINYINT(1)``: that is not a type change
  (Alembic #605).
* MySQL/MariaDB native ``ENUM`` columns are compared by their set of values, so an added
  or removed value is a change (older Alembic releases miss it: #1745). PostgreSQL enum
  types are compared by alembic-postgresql-enum, see :func:`enable_postgresql_enums`.
  SQLite has no enum type (a ``VARCHAR``), so there is nothing to compare there.
* Server defaults are compared by meaning, not spelling: ``false`` and ``0`` on a
  ``TINYINT(1)``, ``0`` and ``0.00`` on a ``DECIMAL``, ``now()`` and
  ``current_timestamp()``, ``'abc'`` and ``'abc'::character varying``, quotes inside
  strings (``'it''s'``, on which Alembic's PostgreSQL comparison fails with a syntax error)
  and the empty string.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from sqlalchemy.sql import sqltypes

from flask_entitydb.migrations._server_facts import MYSQL

# -- types ---------------------------------------------------------------------------------


def compare_type(
    context: MigrationContext,
    inspected_column: sa.Column[Any],
    metadata_column: sa.Column[Any],
    inspected_type: sa.types.TypeEngine[Any],
    metadata_type: sa.types.TypeEngine[Any],
) -> bool | None:
    """Alembic ``compare_type`` hook: is the database column's type different from the
    entity's?

    :returns: ``True`` changed, ``False`` the same, ``None`` let Alembic decide.
    """
    if context.dialect.name not in MYSQL:
        return None
    meta = _dialect_type(metadata_type, context.dialect)
    if isinstance(meta, sqltypes.Boolean) and is_mysql_boolean(inspected_type):
        return False
    if (
        isinstance(meta, sqltypes.Enum)
        and meta.native_enum
        and isinstance(inspected_type, sqltypes.Enum)
    ):
        # MySQL enums have no name or schema: the values are everything. Their order is
        # ignored, as Alembic does, so reordering members of a Python enum is no change.
        return set(meta.enums) != set(inspected_type.enums)
    return None


def _dialect_type(type_: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> Any:
    """The type as the dialect sees it (unwraps ``TypeDecorator`` and ``with_variant``)."""
    return type_.dialect_impl(dialect)


def is_mysql_boolean(type_: sa.types.TypeEngine[Any]) -> bool:
    """Whether a reflected type is how MySQL/MariaDB store a ``Boolean`` (``TINYINT(1)``,
    ``BIT(1)``)."""
    # a type of the MySQL dialect means it is imported (other backends need not import it)
    mysql = sys.modules.get("sqlalchemy.dialects.mysql")
    if mysql is None:
        return isinstance(type_, sqltypes.Boolean)
    if isinstance(type_, mysql.TINYINT):
        return getattr(type_, "display_width", None) in (None, 1)
    if isinstance(type_, mysql.BIT):
        return getattr(type_, "length", None) in (None, 1)
    return isinstance(type_, sqltypes.Boolean)


# -- server defaults -----------------------------------------------------------------------

_CAST = re.compile(r'::(?:"[^"]+"|[A-Za-z_][\w .]*?)(?:\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\[\])?$')
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_STRING = re.compile(r"(?:_\w+)?'((?:[^'\\]|''|\\.)*)'", re.DOTALL)
_TRUE_WORDS = frozenset({"true", "1", "t", "y", "yes", "on", "b'1'"})
_FALSE_WORDS = frozenset({"false", "0", "f", "n", "no", "off", "b'0'"})
_NOW = "current_timestamp"
_SYNONYMS = {
    "now()": _NOW,
    "current_timestamp()": _NOW,
    "localtimestamp": _NOW,
    "localtimestamp()": _NOW,
    "transaction_timestamp()": _NOW,
    "current_date()": "current_date",
    "curdate()": "current_date",
    "current_time()": "current_time",
    "curtime()": "current_time",
}


def compare_server_default(
    context: MigrationContext,
    inspected_column: sa.Column[Any],
    metadata_column: sa.Column[Any],
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic ``compare_server_default`` hook: is the database column's server default
    different from the entity's?

    Literal defaults (strings, numbers, booleans) are compared by value according to the
    column's type; well-known functions (``now()``, ``CURRENT_TIMESTAMP`` ...) by meaning.
    Anything else, and a default present on one side only, is left to Alembic.

    :returns: ``True`` changed, ``False`` the same, ``None`` let Alembic decide.
    """
    if inspected_default is None or not isinstance(metadata_default, sa.DefaultClause):
        return None
    dialect = context.dialect
    ddl_default = _render(metadata_default.arg, dialect)
    affinity = _affinity(metadata_column.type, dialect)
    backslashes = dialect.name in MYSQL
    ours = _canonical(ddl_default, affinity, backslashes=backslashes)
    theirs = _canonical(inspected_default, affinity, backslashes=backslashes)
    if ours == theirs:
        return False
    if ours[0] == theirs[0] != "sql" and affinity != "other":
        return True  # two values of the same kind that differ
    # Expressions, and literals the database may have rewritten (such as a timestamp
    # with a time zone): Alembic decides, on PostgreSQL by asking the server.
    return None


def _render(arg: Any, dialect: sa.Dialect) -> str:
    """The SQL text ``CREATE TABLE`` gives the entity's default (Alembic's own rendering
    leaves a string default unquoted)."""
    if isinstance(arg, str):
        arg = sa.literal(arg, sa.String())
    return str(arg.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _affinity(type_: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> str:
    impl = _dialect_type(type_, dialect)
    if isinstance(impl, sqltypes.Boolean):
        return "boolean"
    if isinstance(impl, (sqltypes.Integer, sqltypes.Numeric)):  # Float is a Numeric
        return "number"
    if isinstance(impl, (sqltypes.String, sqltypes.Enum)):  # Text, Unicode, Enum
        return "string"
    return "other"


def _canonical(sql: str, affinity: str, *, backslashes: bool) -> tuple[str, object]:
    """``(kind, value)`` of a default's SQL text; kind is ``bool``, ``number``, ``string``
    or ``sql`` (an expression, normalised for spelling)."""
    text = _strip(sql)
    string = _STRING.fullmatch(text)
    if string is not None:
        value: object = _unquote(string.group(1), backslashes=backslashes)
        literal = str(value)
    elif _NUMBER.fullmatch(text):
        literal = text
    elif text.lower() in {"true", "false"}:
        literal = text.lower()
    else:
        expression = " ".join(text.lower().split())
        return "sql", _SYNONYMS.get(expression, expression)

    if affinity == "boolean":
        word = literal.strip().lower()
        if word in _TRUE_WORDS:
            return "bool", True
        if word in _FALSE_WORDS:
            return "bool", False
    if affinity in {"boolean", "number"}:
        try:
            return "number", Decimal(literal.strip())
        except InvalidOperation:
            pass
    return "string", literal


def _strip(sql: str) -> str:
    """Remove surrounding whitespace, parentheses and PostgreSQL ``::type`` casts."""
    text = sql.strip()
    while True:
        before = text
        text = _CAST.sub("", text).strip()
        if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
            text = text[1:-1].strip()
        if text == before:
            return text


def _balanced(text: str) -> bool:
    depth = 0
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted:
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth < 0:
                return False
    return depth == 0 and not quoted


def _unquote(body: str, *, backslashes: bool) -> str:
    if backslashes:
        body = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": "\0"}.get(m[1], m[1]), body)
    return body.replace("''", "'")


# -- PostgreSQL enums ----------------------------------------------------------------------


def enable_postgresql_enums(*, include_name: Callable[[str], bool] | None = None) -> None:
    """Turn on alembic-postgresql-enum, which makes autogenerate create, change and drop
    PostgreSQL enum types (Alembic alone misses changed values, #1745).

    Call it before autogenerate runs on a PostgreSQL database, and only then: importing the
    plugin registers it with Alembic for the whole process, and on other databases it
    only logs that it skips them. Enum values are compared ignoring their order, as for
    MySQL above. Calling it again replaces the configuration.

    :param include_name: which enum type names the plugin may create, change or drop
        (default: all in the schema, including types no entity uses any more).
    :raises ImportError: alembic-postgresql-enum is not installed
        (``pip install flask-entitydb[postgresql]``).
    """
    import alembic_postgresql_enum

    config = alembic_postgresql_enum.Config(ignore_enum_values_order=True)
    if include_name is not None:
        config.include_name = include_name
    alembic_postgresql_enum.set_configuration(config)
