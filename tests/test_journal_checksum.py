"""The migration journal's checksum of a revision file: its fast path (a small lexer that cuts
the comments out) gives the very string the tokenize definition gives, which every journal
row in existing databases was hashed from, and ordinary revision files take it (issue #28)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import re
import tokenize
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import render_python_code
from alembic.config import Config
from alembic.operations import ops
from alembic.script import ScriptDirectory

from flask_entitydb.migrations._journal.hashed_text import fast_without_comments, hashed_text
from flask_entitydb.migrations._journal.table import checksum

ROOT = Path(__file__).resolve().parent.parent
BOOKSHELF_REVISION = (
    ROOT
    / "examples/bookshelf/bookshelf/migrations/versions/0001_authors_books_shelves_and_loans.py"
)
ENTITYDB_TEMPLATE = ROOT / "flask_entitydb/migrations/_scaffold/templates/entitydb/script.py.mako"

# The definition, as flask-entitydb computed it before the fast path (kept verbatim here so a
# change to the package's fallback cannot move the reference with it).
_BLANK_OR_COMMENT = re.compile(r"^\s*(#.*)?$")


def reference(data: bytes) -> str:
    try:
        text = _without_comments(data.decode("utf-8"))
    except (UnicodeDecodeError, tokenize.TokenError, SyntaxError):
        text = data.decode("utf-8", "replace")
    lines = [line.rstrip() for line in text.splitlines() if not _BLANK_OR_COMMENT.match(line)]
    return "\n".join(lines)


def _without_comments(text: str) -> str:
    tokens = [
        token
        for token in tokenize.generate_tokens(io.StringIO(text).readline)
        if token.type != tokenize.COMMENT
    ]
    return tokenize.untokenize(tokens)


def _tokenizes(text: str) -> bool:
    try:
        _without_comments(text)
    except (tokenize.TokenError, SyntaxError):
        return False
    return True


EDGE_CASES = {
    "hash in strings": "a = \"#x\"  # c\nb = '#'\nc = b\"#\"\nd = rb'\\#'\n",
    "hash in triple strings": "x = '''\n# not a comment\n'''  # a comment\ny = \"\"\"#\"\"\"\n",
    "hash in f-strings": 'x = f"{a!r:#>10} #"  # c\ny = F\'{"#"}\'\nz = rf"#{b}"\n',
    "comment after code": "x = 1  # one\nif x:  # test\n    pass    # nothing\n",
    "comment-only lines in brackets": "x = [\n  # first\n  1,\n      # odd\n  2,  # two\n]\n",
    "docstring with hash and blank lines": (
        'def f():\n    """Doc.\n\n    # not a comment\n\n        indented\n    """\n    return 1\n'
    ),
    "strings with escapes": "a = 'it\\'s # not'\nb = \"\\\\\"  # c\nc = '''\\''' # '''\n",
    "string continued by backslash-newline": "x = 'a\\\nb # no'  # yes\ny = 2\n",
    "backslash continuation": "x = 1 + \\\n    2  # c\n",
    "backslash at the end": "x = 1 \\",
    "tabs": "if x:\n\tpass  # c\n",
    "tab between tokens": "x =\t1  # c\n",
    "form feed": "x = 1\n\f\ny = 2  # c\n",
    "unterminated single-quoted string": "x = 'abc  # c\ny = 1\n",
    "unterminated triple-quoted string": "x = '''abc  # c\ny = 1\n",
    "triple quote closed by a single quote": "x = '''abc'\n",
    "unbalanced bracket": "x = (1,  # c\n",
    "closing bracket first": "x = 1)  # c\ny = 2\n",
    "closing bracket first, opened again": "x = 1)  # c\ny = (2\n",
    "closing and reopening on a line": "x = 1)(  # c\ny = 2\n",
    "mismatched brackets": "x = (1]  # c\ny = [2)\n",
    "bad dedent": "if x:\n        a = 1  # c\n    b = 2\n",
    "unexpected indent": "x = 1\n    y = 2  # c\n",
    "comment at no indentation level": "if a:\n        b()\n    # c\n  \n        d()\n",
    "indented first line": "  x = 1  # c\n",
    "dedent to an outer level": "if a:\n    if b:\n        c()\n# c\n  # odd\nd()\n",
    "CRLF": "x = 1  # c\r\nif x:\r\n    y = 2\r\n",
    "lone CR": "x = 1  # a\rb\ny = 2\n",
    "no trailing newline": "x = 1\ny = 2  # c",
    "comment on the last line, no newline": "x = 1\n# c",
    "spaces on the last line": "x = 1\n   ",
    "empty": "",
    "only comments": "# a\n\n   # b\n",
    "BOM": "\ufeffx = 1  # c\n",
    "non-ASCII": 'x = "é"  # ç\nnamé = 1  # c\ny = 2 → 3\n',
    "line separators in a comment": "x = 1  # a\u2028b\x85c\ny = 2\n",
    "stray characters": "x = $y  # c\nz = a ? b\nw = `q`\nv = 1 ! 2\n",
    "adjacent strings": "x = ('a' 'b'  \"c\"  # c\n     b'd')\ny = 'e''f'\n",
    "empty strings": "x = ''\ny = \"\"  # c\nz = '' ''\n",
    "nested brackets over lines": "x = {\n    'a': [\n        (1,\n  2),  # c\n    ],\n}\ny = 3\n",
}


@pytest.mark.parametrize("text", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_an_edge_case_hashes_what_tokenize_hashes(text: str) -> None:
    data = text.encode()
    assert hashed_text(data) == reference(data)


def test_the_edge_cases_take_the_fast_path_only_where_tokenize_keeps_the_text() -> None:
    fast = {name for name, text in EDGE_CASES.items() if fast_without_comments(text) is not None}
    # the fast path is not simply refusing everything: these need no fallback
    assert {
        "hash in strings",
        "hash in triple strings",
        "comment after code",
        "comment-only lines in brackets",
        "docstring with hash and blank lines",
        "string continued by backslash-newline",
        "unexpected indent",
        "dedent to an outer level",
        "comment at no indentation level",
        "no trailing newline",
        "empty",
    } <= fast
    # and it refuses where tokenize raises (the checksum is then the raw text's)
    for name in (
        "unterminated triple-quoted string",
        "triple quote closed by a single quote",
        "unbalanced bracket",
        "closing bracket first",
        "bad dedent",
    ):
        assert not _tokenizes(EDGE_CASES[name])
        assert name not in fast
    # and where untokenize changes more than the comments
    # or where tokenize raises since Python 3.12
    assert (
        not {
            "backslash continuation",
            "backslash at the end",
            "tabs",
            "CRLF",
            "closing bracket first, opened again",
            "mismatched brackets",
        }
        & fast
    )


def test_non_utf8_bytes_hash_what_tokenize_hashes() -> None:
    data = "x = 'café'  # c\n".encode("latin-1")
    assert hashed_text(data) == reference(data) == "x = 'caf\ufffd'  # c"


def _corpus() -> list[Path]:
    files: list[Path] = []
    for name in ("alembic", "sqlalchemy", "flask", "click"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None
        found = sorted(Path(spec.origin).parent.rglob("*.py"))
        # every 2nd file under 60 KB: a few seconds through tokenize, all kinds of code
        files += [path for path in found if path.stat().st_size < 60_000][::2]
    return files + sorted((ROOT / "examples").rglob("versions/*.py"))


def test_installed_libraries_and_the_repos_revisions_hash_what_tokenize_hashes() -> None:
    corpus = _corpus()
    assert len(corpus) > 150
    differ = [
        path for path in corpus if hashed_text(path.read_bytes()) != reference(path.read_bytes())
    ]
    assert differ == []
    fast = [path for path in corpus if fast_without_comments(path.read_text("utf-8")) is not None]
    assert len(fast) > 0.8 * len(corpus)


def _generated_revisions(folder: Path, template: Path | None) -> list[Path]:
    """Revision files as Alembic writes them: its template (or flask-entitydb's) filled with
    the code autogenerate renders for a few tables."""
    config = Config(str(folder.parent / "alembic.ini"))
    config.set_main_option("script_location", str(folder))
    command.init(config, str(folder), template="generic")
    if template is not None:
        (folder / "script.py.mako").write_text(template.read_text())
    script = ScriptDirectory.from_config(config)
    metadata = sa.MetaData()
    tables = [
        sa.Table(
            "authors",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(100), nullable=False, comment="shown # as is"),
            sa.Column("kind", sa.Enum("person", "group", name="author_kind")),
            sa.UniqueConstraint("name", name="uq_authors_name"),
        ),
        sa.Table(
            "books",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("author_id", sa.ForeignKey("authors.id"), nullable=False),
            sa.Column("price", sa.Numeric(10, 2), server_default=sa.text("'0.00'")),
            sa.Column("data", sa.JSON, server_default=sa.text('\'{"a": "#"}\'')),
            sa.Index("ix_books_author_id", "author_id"),
        ),
    ]
    head = None
    paths = []
    for number, table in enumerate(tables):
        upgrade = ops.UpgradeOps(
            ops=[ops.CreateTableOp.from_table(table)]
            + [ops.CreateIndexOp.from_index(index) for index in table.indexes]
        )
        made = script.generate_revision(
            f"{number:04d}",
            f"create {table.name}",
            head=head or "base",
            upgrades=render_python_code(upgrade),
            downgrades=render_python_code(upgrade.reverse()),
        )
        assert made is not None
        head = made.revision
        paths.append(Path(made.path))
    return paths


@pytest.mark.parametrize("template", [None, ENTITYDB_TEMPLATE], ids=["alembic", "entitydb"])
def test_revision_files_take_the_fast_path(tmp_path: Path, template: Path | None) -> None:
    paths = [*_generated_revisions(tmp_path / "migrations", template), BOOKSHELF_REVISION]
    for path in paths:
        text = path.read_text("utf-8")
        stripped = fast_without_comments(text)
        assert stripped is not None, path
        assert stripped != text  # it had comments to cut
        assert hashed_text(path.read_bytes()) == reference(path.read_bytes())


def test_the_checksums_stay_the_ones_journal_rows_hold(tmp_path: Path) -> None:
    # computed by flask-entitydb before the fast path existed (tokenize only)
    assert checksum(str(BOOKSHELF_REVISION)) == (
        "bae8b72f9670d347e4b4dd251bee2943d2f1b3d732c58ae82fbf03b3116f122b"
    )
    revision = tmp_path / "0002_loans.py"
    revision.write_text(REVISION)
    assert fast_without_comments(REVISION) is not None
    assert checksum(str(revision)) == HEX_OF_REVISION
    assert hashlib.sha256(reference(REVISION.encode()).encode()).hexdigest() == HEX_OF_REVISION


REVISION = '''"""loans  # not a comment

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "loans",  # who has which book
        sa.Column("id", sa.Integer(), nullable=False),
        # the reader
        sa.Column("reader", sa.String(length=80), server_default="#1"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("""
        UPDATE books SET note = '# lent'  -- sql
    """)
    # ### end Alembic commands ###


def downgrade() -> None:
    op.drop_table("loans")'''.replace('"#1"),', '"#1"),   ')  # trailing whitespace, ignored
HEX_OF_REVISION = "6fc9e88781835bd002960dd258f442458ea6c08417f1866b9823fff14dc786b3"
