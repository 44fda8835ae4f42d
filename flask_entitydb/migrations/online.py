"""``online_ddl``: a revision states the online algorithm an operation relies on (MySQL,
MariaDB).

Inside ``with online_ddl(op, "INSTANT"):`` every ``ALTER TABLE``, ``CREATE INDEX`` and
``DROP INDEX`` the revision runs carries ``ALGORITHM=INSTANT`` (``"NOCOPY"``, MariaDB only:
``ALGORITHM=NOCOPY, LOCK=NONE``, ``ALGORITHM=INPLACE, LOCK=NONE`` on MySQL; ``"INPLACE"``:
``ALGORITHM=INPLACE, LOCK=NONE``), online and in ``flask db upgrade --sql`` (there
``NOCOPY`` needs a ``mariadb://`` URL, else it is written as ``INPLACE``). A server that
cannot run the statement that way refuses it (error 1845 or 1846) instead of copying the
table while writes wait. On other databases the block changes nothing, so the revision
stays portable. ``flask db migrate`` writes these blocks, judged by the server (see
docs/safe-migrations.md).

How: while the block runs, the statements Alembic executes (online and offline: see
:func:`~flask_entitydb._compat.alembic.statements_rewritten`) are wrapped in
:class:`OnlineDDL`, a SQLAlchemy DDL element of this module compiled (``@compiles``) as the
statement followed by the clause. Nothing else is changed, and nothing outside the block.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from alembic.ddl.base import AlterTable
from alembic.ddl.impl import DefaultImpl
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import (
    AddConstraint,
    CreateIndex,
    DropConstraint,
    DropIndex,
    ExecutableDDLElement,
)
from sqlalchemy.sql.compiler import DDLCompiler

from flask_entitydb._compat.alembic import statements_rewritten
from flask_entitydb.migrations._server_facts import MYSQL

ALGORITHMS = ("INSTANT", "NOCOPY", "INPLACE")
"""The algorithms of :func:`online_ddl`, strongest first. ``NOCOPY`` is MariaDB's (in
place without rebuilding the table); MySQL has none, and runs a ``NOCOPY`` block with
``INPLACE`` (:func:`algorithms_of`)."""

CLAUSES = {
    "INSTANT": "ALGORITHM=INSTANT",
    "NOCOPY": "ALGORITHM=NOCOPY, LOCK=NONE",
    "INPLACE": "ALGORITHM=INPLACE, LOCK=NONE",
}
"""The clause each algorithm adds to an ``ALTER TABLE``."""

MARIADB_ONLY = ("NOCOPY",)
"""The algorithms only MariaDB knows."""

_ONLINE_DDL = (AlterTable, CreateIndex, DropIndex, AddConstraint, DropConstraint)

_algorithm: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "flask_entitydb_online_ddl", default=None
)


class OnlineDDL(ExecutableDDLElement):
    """An ``ALTER TABLE`` / ``CREATE INDEX`` / ``DROP INDEX`` with an algorithm clause."""

    def __init__(self, element: ExecutableDDLElement, algorithm: str) -> None:
        self.element = element
        self.algorithm = algorithm


def algorithms_of(dialect: Any) -> tuple[str, ...]:
    """The algorithms the server of ``dialect`` knows, strongest first: MariaDB's
    (``is_mariadb``, known once connected or from a ``mariadb://`` URL) include
    ``NOCOPY``; MySQL's do not."""
    if getattr(dialect, "is_mariadb", False):
        return ALGORITHMS
    return tuple(name for name in ALGORITHMS if name not in MARIADB_ONLY)


def known_to(algorithm: str, dialect: Any) -> str:
    """``algorithm`` as the server of ``dialect`` runs it: ``NOCOPY`` is ``INPLACE`` on
    MySQL (which may rebuild the table in place; it never copies it either)."""
    return algorithm if algorithm in algorithms_of(dialect) else "INPLACE"


@compiles(OnlineDDL)
def _compile(element: OnlineDDL, compiler: DDLCompiler, **kw: Any) -> str:
    clause = CLAUSES[known_to(element.algorithm, compiler.dialect)]
    inner = element.element
    if isinstance(inner, DropIndex):
        # MariaDB's DROP INDEX takes no algorithm; ALTER TABLE ... DROP INDEX does (MySQL too)
        index: Any = inner.element
        table = compiler.preparer.format_table(index.table)
        return f"ALTER TABLE {table} DROP INDEX {compiler.preparer.format_index(index)}, {clause}"
    sql = compiler.process(inner, **kw)
    if isinstance(inner, CreateIndex):
        return f"{sql} {clause.replace(',', '')}"  # CREATE INDEX: no commas between options
    return f"{sql}, {clause}"


def current_algorithm() -> str | None:
    """The algorithm of the innermost :func:`online_ddl` block running, if any."""
    return _algorithm.get()


@contextlib.contextmanager
def algorithm_in_force(algorithm: str | None) -> Iterator[None]:
    """Statements executed through a :func:`clauses_added` impl get ``algorithm``'s clause
    (none for ``None``) while the block runs."""
    token = _algorithm.set(algorithm)
    try:
        yield
    finally:
        _algorithm.reset(token)


def _with_clause(construct: Any) -> Any:
    """``construct`` with the clause of the algorithm in force, if it takes one."""
    algorithm = _algorithm.get()
    if algorithm is not None and isinstance(construct, _ONLINE_DDL):
        return OnlineDDL(construct, algorithm)
    return construct


@contextlib.contextmanager
def clauses_added(impl: DefaultImpl) -> Iterator[None]:
    """While the block runs, the MySQL/MariaDB statements executed by the Alembic ``impl``
    (online or as ``--sql`` output) carry the clause of the algorithm in force."""
    if impl.dialect.name not in MYSQL:
        yield
        return
    with statements_rewritten(impl, _with_clause):
        yield


@contextlib.contextmanager
def online_ddl(op: Any, algorithm: str) -> Iterator[None]:
    """Run the block's ``ALTER TABLE``, ``CREATE INDEX`` and ``DROP INDEX`` statements with
    ``ALGORITHM=INSTANT`` (``algorithm="INSTANT"``), ``ALGORITHM=NOCOPY, LOCK=NONE``
    (``"NOCOPY"``: MariaDB; MySQL, which has no NOCOPY, runs it as ``"INPLACE"``) or
    ``ALGORITHM=INPLACE, LOCK=NONE`` (``"INPLACE"``) on MySQL/MariaDB, so that a server that
    would have to copy the table refuses them (error 1846) rather than block writes for
    the copy. Nothing changes on other databases. Wrap a whole ``op.batch_alter_table(...)``
    block (its statements run when it ends)::

        with online_ddl(op, "INSTANT"):
            with op.batch_alter_table("users", schema=None) as batch_op:
                batch_op.add_column(sa.Column("age", sa.Integer(), nullable=True))

    :param op: the revision's ``op`` (``from alembic import op``).
    :raises ValueError: ``algorithm`` is not ``"INSTANT"``, ``"NOCOPY"`` or ``"INPLACE"``.
    """
    if algorithm not in CLAUSES:
        raise ValueError(
            f"online_ddl() algorithm {algorithm!r} is not known; use 'INSTANT', 'NOCOPY' or"
            " 'INPLACE'."
        )
    with clauses_added(op.get_context().impl), algorithm_in_force(algorithm):
        yield
