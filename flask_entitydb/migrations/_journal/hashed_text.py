"""The text a revision file's checksum hashes: the file without its comments, blank lines
and trailing whitespace.

The definition is the tokenize one (``tokenize.generate_tokens`` without its COMMENT tokens,
``tokenize.untokenize``; the raw text when tokenize raises): every journal row already holds
a hash of it, so it may never change. It costs milliseconds per file, and ``flask db upgrade``
checks every applied revision on each run, so an ordinary file takes a fast path first: one
regular expression finds the string literals, comments, brackets and line starts, and the
comments are cut out. For such a file untokenize gives back the text with each comment
turned into spaces, which the line filter below makes the same string. The fast path gives up
(``None``) on anything where untokenize would change more than the comments or tokenize would
raise: a backslash, tab, form feed, carriage return or other control or non-ASCII character
outside a string, an unterminated string, a bracket closed that is not open or left open, an
indentation no outer level matches; and on Python 3.12 and later (a C tokenizer that splits
f-strings; an untokenize that may put a space between two strings) an f-string or two strings
side by side. The fallback is then the tokenize definition itself.
"""

from __future__ import annotations

import io
import re
import sys
import tokenize

_TOKENS = re.compile(
    r"""
    [ !%&*+,\-./0-9:;<=>@A-Z^_a-z|~]*  # code the fast path copies as it is (printable ASCII)
    (?:
        (?P<string>
            '''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''
          | \"\"\"[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*\"\"\"
          | '(?!'')[^\n'\\]*(?:\\.[^\n'\\]*)*'
          | "(?!"")[^\n"\\]*(?:\\.[^\n"\\]*)*"
        )
      | (?P<comment>\#[^\r\n]*)
      | (?P<newline>\n[ ]*)
      | (?P<open>[(\[{])
      | (?P<close>[)\]}])
      | (?P<unsure>['"\\$?`\x00-\x09\x0b-\x1f]|[^\x00-\x7e])
    )
    """,
    re.VERBOSE | re.DOTALL,
)
"""Code up to the next token the fast path cares about, and that token. (Its character
classes are written as short ranges: ``[^\x00-\x7e]`` rather than ``[\x7f-\U0010ffff]``,
which takes ``re`` milliseconds to compile.) A quote that no
string alternative matched opens an unterminated string (the single-quote ones refuse to start
a triple quote, so an unterminated triple-quoted string is not read as ``''``)."""

_STRING_PREFIXES = {
    "",
    *"rRbBuU",
    *(r + b for r in "rR" for b in "bB"),
    *(b + r for b in "bB" for r in "rR"),
}

_CLOSING = {"(": ")", "[": "]", "{": "}"}

_F_PREFIX = re.compile(r"[fF][rRbB]?$|[rR][fF]$")

_BLANK_OR_COMMENT = re.compile(r"^\s*(#.*)?$")

_NEW_TOKENIZER = sys.version_info >= (3, 12)


def hashed_text(data: bytes) -> str:
    """The text a revision file's checksum hashes (``data`` is the file's bytes): without
    comments (when the file is UTF-8 and tokenizes), blank and comment-only lines and
    trailing whitespace."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _kept_lines(data.decode("utf-8", "replace"))
    stripped = fast_without_comments(text)
    if stripped is None:
        try:
            stripped = _tokenize_without_comments(text)
        except (tokenize.TokenError, SyntaxError):
            stripped = text
    return _kept_lines(stripped)


def fast_without_comments(text: str) -> str | None:
    """``text`` without its comments, or ``None`` when the fast path is not sure its result
    matches the tokenize one after the line filter (see the module's docstring)."""
    source = "\n" + text  # the first line starts after a newline like every other
    pieces: list[str] = []
    copied = 1
    closing: list[str] = []  # the brackets to close, innermost last
    indents = [0]
    string_end = -1
    for match in _TOKENS.finditer(source):
        kind = match.lastgroup
        if kind == "open":
            closing.append(_CLOSING[source[match.end() - 1]])
        elif kind == "close":
            if not closing or closing.pop() != source[match.end() - 1]:
                return None  # tokenize raises (since 3.12; before, at the end or not at all)
        elif kind == "string":
            start = match.start("string")
            if (
                _NEW_TOKENIZER
                and (
                    _F_PREFIX.search(source, max(start - 2, 0), start)
                    # untokenize puts a space between two strings on a line since 3.12.x/3.13
                    or (
                        match.start() == string_end
                        and source[string_end:start].lstrip(" ") in _STRING_PREFIXES
                    )
                )
            ):
                return None
            string_end = match.end()
        elif kind == "comment":
            pieces.append(source[copied : match.start("comment")])
            copied = match.end()
        elif kind == "unsure":
            return None
        elif not closing:  # a newline outside brackets: the next line is a new statement
            end = match.end()
            if source[end : end + 1] in ("", "#", "\n"):
                continue  # a blank or comment-only line: tokenize checks no indentation
            column = end - match.start("newline") - 1
            if column > indents[-1]:
                indents.append(column)
            elif column < indents[-1]:
                if column not in indents:
                    return None  # tokenize raises IndentationError
                while column < indents[-1]:
                    indents.pop()
    if closing:
        return None
    pieces.append(source[copied:])
    return "".join(pieces)


def _tokenize_without_comments(text: str) -> str:
    tokens = [
        token
        for token in tokenize.generate_tokens(io.StringIO(text).readline)
        if token.type != tokenize.COMMENT
    ]
    return tokenize.untokenize(tokens)


def _kept_lines(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines() if not _BLANK_OR_COMMENT.match(line)]
    return "\n".join(lines)
