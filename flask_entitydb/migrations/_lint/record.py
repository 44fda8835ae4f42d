"""Reading what revision scripts do without a database: run each ``upgrade()`` with an
Alembic ``op`` that records every operation (with the file line it was called from) and
renders its SQL in offline mode, instead of executing it.

Nothing here reads the text of a revision with patterns: the operations are Alembic's own
operation objects, produced by the revision's code as Alembic runs it.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import sys
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from sqlalchemy.engine import URL
from sqlalchemy.exc import CompileError
from sqlalchemy.sql.elements import TextClause

from flask_entitydb._compat.alembic import op_proxy_restored
from flask_entitydb.migrations._lint.sqltext import has_algorithm, target_table
from flask_entitydb.migrations._server_facts import MYSQL
from flask_entitydb.migrations.online import (
    CLAUSES,
    algorithm_in_force,
    algorithms_of,
    clauses_added,
    current_algorithm,
)

ALLOW_MARK = "entitydb: allow"
"""The comment that marks a reviewed exception: ``# entitydb: allow <rule>[, <rule>]``."""


@dataclass
class Recorded:
    """One operation a revision's ``upgrade()`` performs."""

    revision: str
    path: str
    line: int
    operation: ops.MigrateOperation
    statements: list[str] = field(default_factory=list)
    """The SQL it runs (offline rendering), one string per statement; empty on SQLite."""
    new_table: bool = False
    """Its table was created earlier in the same revision (no rows, no running code)."""
    new_column: bool = False
    """Its column was added earlier in the same revision."""
    created: frozenset[str] = frozenset()
    """The tables created earlier in the same revision."""
    allowed: frozenset[str] = frozenset()
    """Rules allowed by a comment on its line or at the top of the revision file."""
    algorithm: str | None = None
    """The algorithm of the ``online_ddl`` block it runs in (MySQL/MariaDB), if any."""
    online: dict[str, list[str]] = field(default_factory=dict)
    """MySQL/MariaDB: :attr:`statements` with each online algorithm's clause, by
    algorithm (empty when its statements take none)."""
    autocommit: bool = False
    """It runs in ``op.get_context().autocommit_block()`` (each statement commits)."""
    unrendered: str | None = None
    """Why its SQL could not be rendered without a database (a data statement with
    untyped ``sa.column()`` values, which Alembic binds only when it runs): it is judged
    from the operation itself, and runs nothing on the scratch databases."""


@dataclass
class RecordedRevision:
    """The operations of one revision, in order, or why they could not be read."""

    script: Script
    operations: list[Recorded]
    error: str | None = None
    error_line: int = 0
    stream: list[tuple[str, Recorded | None]] = field(default_factory=list)
    """Every statement in order with the operation it belongs to (``None``: ``BEGIN`` and
    ``COMMIT`` of ``autocommit_block()``)."""


class _StatementSink(io.StringIO):
    """Alembic's offline output buffer: every ``write`` is one statement."""

    def __init__(self) -> None:
        super().__init__()
        self.statements: list[str] = []

    def write(self, text: str) -> int:
        statement = text.strip().rstrip(";").strip()
        if statement:
            self.statements.append(statement)
        return len(text)


def _table_of(operation: ops.MigrateOperation) -> str | None:
    name = getattr(operation, "table_name", None) or getattr(operation, "source_table", None)
    return str(name) if name else None


def _column_of(operation: ops.MigrateOperation) -> str | None:
    if isinstance(operation, ops.AddColumnOp):
        return str(operation.column.name)
    name = getattr(operation, "column_name", None)
    return str(name) if name else None


class _Comments:
    """The ``# entitydb: allow`` comments of one revision file."""

    def __init__(self, path: str) -> None:
        self.by_line: dict[int, frozenset[str]] = {}
        self.revision_level: frozenset[str] = frozenset()
        self._statements: list[tuple[int, int]] = []
        self._lines: list[str] = []
        try:
            with open(path, encoding="utf-8") as file:
                source = file.read()
        except OSError:
            return
        top: set[str] = set()
        with contextlib.suppress(tokenize.TokenError, SyntaxError):
            for token in tokenize.generate_tokens(io.StringIO(source).readline):
                if token.type != tokenize.COMMENT or ALLOW_MARK not in token.string:
                    continue
                rules = parse_allow(token.string)
                if token.start[1] == 0:
                    top.update(rules)
                else:
                    self.by_line[token.start[0]] = rules
            tree = ast.parse(source)
            self._statements = [
                (node.lineno, node.end_lineno or node.lineno)
                for node in ast.walk(tree)
                if isinstance(node, ast.stmt)
            ]
        self.revision_level = frozenset(top)
        self._lines = source.splitlines()

    def allowed_at(self, line: int) -> frozenset[str]:
        """The rules allowed for an operation called at ``line``: comments on any line of
        its statement or on a comment line right above it, and the revision-level ones."""
        best: tuple[int, int] | None = None
        for first, last in self._statements:
            if first <= line <= last and (best is None or last - first < best[1] - best[0]):
                best = (first, last)
        start, end = best or (line, line)
        found = set(self.revision_level)
        for number in range(start, end + 1):
            found.update(self.by_line.get(number, ()))
        above = start - 1
        while above >= 1 and self._lines[above - 1].strip().startswith("#"):
            found.update(self.by_line.get(above, ()))
            above -= 1
        return frozenset(found)


def revision_allows(path: str) -> frozenset[str]:
    """The rules a revision file allows for all its operations (column-0 comments)."""
    return _Comments(path).revision_level


def parse_allow(comment: str) -> frozenset[str]:
    """The rule names of an ``# entitydb: allow a, b (reason)`` comment."""
    rest = comment.split(ALLOW_MARK, 1)[1]
    names = set()
    for piece in rest.split(","):
        words = piece.split()
        if not words:
            break
        names.add(words[0])
        if len(words) > 1:  # a reason follows the last rule
            break
    return frozenset(names)


def _caller_line(path: str) -> int:
    """The line of the revision file the current operation was called from."""
    wanted = os.path.realpath(path)
    frame = sys._getframe(1)
    while frame is not None:
        if os.path.realpath(frame.f_code.co_filename) == wanted:
            return frame.f_lineno or 0
        frame = frame.f_back  # type: ignore[assignment]
    return 0


_NO_CLAUSE = (ops.CreateTableOp, ops.DropTableOp, ops.ExecuteSQLOp, ops.BulkInsertOp)
_DATA = (ops.ExecuteSQLOp, ops.BulkInsertOp)


def raw_sql(operation: ops.ExecuteSQLOp) -> str | None:
    """The text of an ``op.execute()`` of a string or ``sa.text()``; ``None`` for a
    construct (which Alembic renders itself)."""
    sqltext = operation.sqltext
    if isinstance(sqltext, str):
        return sqltext
    if isinstance(sqltext, TextClause):
        return sqltext.text
    return None


def raw_online_forms(sql: str) -> dict[str, list[str]]:
    """A raw ``ALTER TABLE`` / ``CREATE INDEX`` / ``DROP INDEX ... ON`` of ``op.execute()``
    with each algorithm's clause, as :func:`~flask_entitydb.migrations.online_ddl` would
    add it; empty for other statements and for those that state their own algorithm."""
    statement = sql.strip().rstrip(";").strip()
    words = statement.split()
    upper = [word.upper() for word in words[:4]]
    table = target_table(statement)
    if table is None or has_algorithm(statement):
        return {}
    if upper[:2] == ["ALTER", "TABLE"]:
        return {name: [f"{statement}, {clause}"] for name, clause in CLAUSES.items()}
    if upper[0] == "CREATE":
        return {
            name: [f"{statement} {clause.replace(',', '')}"] for name, clause in CLAUSES.items()
        }
    if upper[0] == "DROP" and len(words) > 2:
        index = words[2]
        return {
            name: [f"ALTER TABLE {table} DROP INDEX {index}, {clause}"]
            for name, clause in CLAUSES.items()
        }
    return {}


def offline_context(url: URL, sink: Any, mariadb: bool = False) -> MigrationContext:
    """An offline (``as_sql``) migration context for ``url`` writing to ``sink``; with
    ``mariadb``, its MySQL dialect knows the server is MariaDB, as a connected one would
    (``NOCOPY`` clauses, MariaDB's quoting)."""
    return MigrationContext.configure(
        url=url,
        dialect_opts={"is_mariadb": True} if mariadb else None,  # type: ignore[dict-item]
        opts={"as_sql": True, "output_buffer": sink, "literal_binds": True},
    )


class OnlineForms:
    """Renders operations offline with each ``online_ddl`` algorithm (MySQL/MariaDB; with
    ``mariadb``, MariaDB's ``NOCOPY`` too)."""

    def __init__(self, url: URL, mariadb: bool = False) -> None:
        self.sink = _StatementSink()
        context = offline_context(url, self.sink, mariadb)
        self._operations = Operations(context)
        self._impl = context.impl

    def statements(self, operation: ops.MigrateOperation) -> list[str]:
        """The statements of ``operation`` as they are."""
        start = len(self.sink.statements)
        with algorithm_in_force(None):
            self._operations.invoke(operation)
        return self.sink.statements[start:]

    def render(self, operation: ops.MigrateOperation) -> dict[str, list[str]]:
        """The statements of ``operation`` with each algorithm's clause, by algorithm;
        empty when it runs no statement that takes one."""
        if self._impl.dialect.name not in MYSQL:
            return {}
        if isinstance(operation, ops.ExecuteSQLOp):
            raw = raw_sql(operation)
            return {} if raw is None else raw_online_forms(raw)
        if isinstance(operation, _NO_CLAUSE):
            return {}
        forms: dict[str, list[str]] = {}
        with clauses_added(self._impl):
            for algorithm in (None, *algorithms_of(self._impl.dialect)):
                start = len(self.sink.statements)
                with algorithm_in_force(algorithm):
                    self._operations.invoke(operation)
                forms[algorithm or ""] = self.sink.statements[start:]
        plain = forms.pop("")
        if all(statements == plain for statements in forms.values()):
            return {}
        return forms


class _Recorder:
    """Records operations for one revision at a time."""

    def __init__(self, url: URL, renders_sql: bool, mariadb: bool = False) -> None:
        self.url = url
        self.sink = _StatementSink()
        self.context = offline_context(url, self.sink, mariadb)
        self.renders_sql = renders_sql
        self.current: list[Recorded] = []
        self.script: Script | None = None
        self.comments: _Comments | None = None
        self.tables: set[str] = set()
        self.columns: set[tuple[str, str]] = set()
        self.owners: dict[int, Recorded] = {}
        self.first = 0
        self.autocommit = 0
        self._render = Operations(self.context)
        self._forms = OnlineForms(url, mariadb) if renders_sql else None

    def start(self, script: Script) -> None:
        self.script = script
        self.autocommit = 0
        self.comments = _Comments(script.path)
        self.current = []
        self.tables = set()
        self.columns = set()
        self.first = len(self.sink.statements)

    def stream(self) -> list[tuple[str, Recorded | None]]:
        """The statements of the revision in progress, with their operations."""
        statements = self.sink.statements
        return [(statements[i], self.owners.get(i)) for i in range(self.first, len(statements))]

    def invoke(self, operation: ops.MigrateOperation) -> Any:
        assert self.script is not None and self.comments is not None
        line = _caller_line(self.script.path)
        table = _table_of(operation)
        if table is None and isinstance(operation, ops.ExecuteSQLOp):
            raw = raw_sql(operation)
            table = None if raw is None else target_table(raw)
        column = _column_of(operation)
        item = Recorded(
            revision=self.script.revision,
            path=os.path.abspath(self.script.path),
            line=line,
            operation=operation,
            new_table=table in self.tables,
            created=frozenset(self.tables),
            new_column=(table, column) in self.columns if table and column else False,
            allowed=self.comments.allowed_at(line),
            algorithm=current_algorithm(),
            autocommit=self.autocommit > 0,
        )
        self.current.append(item)
        if isinstance(operation, ops.CreateTableOp):
            self.tables.add(operation.table_name)
        if isinstance(operation, ops.AddColumnOp) and table and column:
            self.columns.add((table, column))
        if not self.renders_sql:
            if isinstance(operation, ops.CreateTableOp):
                return operation.to_table(self.context)
            return None
        before = len(self.sink.statements)
        try:
            with algorithm_in_force(None):  # the plain statements; the forms by algorithm next
                result = self._render.invoke(operation)
        except CompileError as error:
            if not isinstance(operation, _DATA):
                raise
            # Alembic renders values as literals offline, and an untyped sa.column() has
            # no literal form; online it binds them: the revision runs, so record the
            # operation without its SQL
            del self.sink.statements[before:]
            item.unrendered = " ".join(str(error).split())
            return None
        for index in range(before, len(self.sink.statements)):
            self.owners[index] = item
            item.statements.append(self.sink.statements[index])
        if self._forms is not None and not item.new_table:
            item.online = self._forms.render(operation)
        return result

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Make ``alembic.op`` this recorder for the ``with`` block (and the one of a
        migration in progress again afterwards: ``flask db migrate`` records revisions
        while Alembic's own is installed)."""
        with op_proxy_restored(), Operations.context(self.context) as proxy:
            original_batch = proxy.batch_alter_table

            @contextlib.contextmanager
            def batch_alter_table(*args: Any, **kwargs: Any) -> Iterator[Any]:
                with original_batch(*args, **kwargs) as batch:
                    # the batch's operations are recorded one by one, as they are called
                    batch.invoke = self.invoke  # type: ignore[method-assign]
                    yield batch

            # op.get_bind(): a connection that records what is executed on it as an
            # op.execute() (its dialect is the app's; results cannot be read)
            bind = sa.create_mock_engine(
                self.url, lambda sql, *args, **kwargs: self.invoke(ops.ExecuteSQLOp(sql))
            )
            original_autocommit = self.context.autocommit_block

            @contextlib.contextmanager
            def autocommit_block() -> Iterator[None]:
                with original_autocommit():
                    self.autocommit += 1
                    try:
                        yield
                    finally:
                        self.autocommit -= 1

            self.context.autocommit_block = autocommit_block  # type: ignore[method-assign]
            proxy.invoke = self.invoke  # type: ignore[method-assign]
            proxy.batch_alter_table = batch_alter_table  # type: ignore[method-assign]
            proxy.get_bind = lambda: bind  # type: ignore[method-assign,assignment,return-value]
            yield


def record(scripts: list[Script], url: URL, mariadb: bool = False) -> list[RecordedRevision]:
    """Run the ``upgrade()`` of each script (oldest first) in recording mode (``mariadb``:
    the MySQL server of ``url`` is MariaDB).

    A revision whose code needs a live database (``op.get_bind()`` results, reflection)
    is reported with the error instead of its operations.
    """
    renders_sql = url.get_backend_name() != "sqlite"
    recorder = _Recorder(url, renders_sql, mariadb)
    found: list[RecordedRevision] = []
    with recorder.installed():
        for script in scripts:
            recorder.start(script)
            upgrade = getattr(script.module, "upgrade", None)
            try:
                if upgrade is not None:
                    upgrade()
            except Exception as error:
                line = 0
                traceback = error.__traceback__
                wanted = os.path.realpath(script.path)
                while traceback is not None:
                    if os.path.realpath(traceback.tb_frame.f_code.co_filename) == wanted:
                        line = traceback.tb_lineno
                    traceback = traceback.tb_next
                message = " ".join(f"{type(error).__name__}: {error}".split())
                found.append(
                    RecordedRevision(script, recorder.current, message, line, recorder.stream())
                )
                continue
            found.append(RecordedRevision(script, recorder.current, stream=recorder.stream()))
    return found
