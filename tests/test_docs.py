"""Every code sample in ``docs/*.md`` and ``README.md`` is exercised, so the docs cannot rot.

How a page is run: its fenced code blocks are taken in order, in a fresh working directory
(``tmp_path``) that is also on ``PYTHONPATH``, as a new user would type them.

* a ``python`` block runs as a script (``python -c``) and must exit 0;
* a ``console`` block runs each ``$ command`` with bash and must exit 0 (or the code given by
  an ``<!-- exit: N -->`` marker, for its last command); the lines printed under a command
  in the docs must appear, in order, in what it really prints (``...`` matches anything);
  ``$ export NAME=value`` sets a variable for the rest of the page;
* a caption ``File `path`:`` on the line right before the fence (visible on GitHub and
  in Sphinx alike) writes the block to ``path`` (TOML and Python files are also parsed);
* a marker, an HTML comment on the line right before the fence, changes that:

  ``<!-- covered-by: tests/file.py::test_name -->``
      not run here; that test exercises the same thing (it must exist);
  ``<!-- skip: reason -->``
      not run, for a stated reason (``pip install``, Docker, starting a server).

Any other block (``toml``, ``yaml``, ``text``, ...) must carry one of those markers.

An ``export DB_CONNECTION_STRING=...`` of a MySQL or PostgreSQL URL is pointed at a fresh
database on the test server (``ENTITYDB_TEST_MYSQL_URL`` / ``ENTITYDB_TEST_POSTGRESQL_URL``),
so the MySQL steps of the quickstart really run against MariaDB; without a server URL they
run on a SQLite file instead.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers.databases import create_database

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: TOML files are written, not parsed
    tomllib = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^<!--\s*(?P<kind>[a-z-]+):\s*(?P<value>.*?)\s*-->$")
_MARKER_KINDS = {"file", "covered-by", "skip", "exit"}
_CAPTION = re.compile(r"^File `(?P<path>[^`]+)`:$")
_RUNNABLE = {"python", "console"}
_TIMEOUT = 180
_PYTHON_DRIVER = """
import ast, os, sys, traceback
for where, code in ast.literal_eval(sys.argv[1]):
    saved = dict(os.environ)
    try:
        exec(compile(code, where, "exec"), {"__name__": "__main__"})
    except BaseException:
        traceback.print_exc()
        sys.exit(f"{where}: the python sample failed")
    finally:
        os.environ.clear()
        os.environ.update(saved)
"""


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    lang: str
    code: str
    marker: tuple[str, str] | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def code_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, directives (```` ```{name} ````) left out."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not (
            lines[index].startswith(fence) and not lines[index].strip(fence[0]).strip()
        ):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        if info.startswith("{"):
            continue  # a MyST directive (toctree, include, click, autodoc), not a sample
        previous = lines[start - 1].strip() if start else ""
        marker_match = _MARKER.match(previous)
        marker = (marker_match["kind"], marker_match["value"]) if marker_match else None
        caption = _CAPTION.match(previous)
        if caption:
            marker = ("file", caption["path"])
        lang = info.split()[0] if info else ""
        blocks.append(Block(page, start + 1, lang, "\n".join(body) + "\n", marker))
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in code_blocks(page)]


def test_file_names_are_visible() -> None:
    # an HTML comment is not rendered: readers would not see which file a sample goes in
    hidden = [
        f"{page.relative_to(ROOT)}:{number}"
        for page in PAGES
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if re.match(r"^<!--\s*file:", line.strip())
    ]
    assert hidden == [], "use a visible caption, File `path`:, instead of <!-- file: path -->"
    assert len([b for b in ALL_BLOCKS if b.marker and b.marker[0] == "file"]) >= 20


def test_docs_have_samples() -> None:
    # the parser must find the samples; an empty list would make every check below vacuous
    assert len([b for b in ALL_BLOCKS if b.lang in _RUNNABLE and b.marker is None]) >= 20


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.where)
def test_every_sample_is_exercised_or_explained(block: Block) -> None:
    if block.marker is None:
        assert block.lang in _RUNNABLE, (
            f"{block.where}: a '{block.lang or 'plain'}' block is neither run nor marked;"
            " add <!-- file: path -->, <!-- covered-by: tests/x.py::test_y --> or"
            " <!-- skip: reason --> on the line before it."
        )
        return
    kind, value = block.marker
    assert kind in _MARKER_KINDS, f"{block.where}: unknown marker '{kind}'"
    assert value, f"{block.where}: the '{kind}' marker needs a value"
    if kind == "covered-by":
        path, _, name = value.partition("::")
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^\s*def {re.escape(name)}\(", source, re.M), (
            f"{block.where}: covered-by names '{value}', which does not exist"
        )
    if kind == "exit":
        assert block.lang == "console" and value.isdigit(), block.where


# -- running a page ----------------------------------------------------------------------


@dataclass
class PageRun:
    """State of one page's run: its working directory and environment."""

    workdir: Path
    env: dict[str, str]
    database: Callable[[str], str]

    def python(self, blocks: list[Block]) -> None:
        """Run consecutive python blocks, each as its own script (fresh globals, the
        environment restored after it), in one interpreter to save start-up time."""
        if not blocks:
            return
        result = subprocess.run(
            [sys.executable, "-c", _PYTHON_DRIVER, repr([(b.where, b.code) for b in blocks])],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
        )
        assert result.returncode == 0, f"a python sample failed:\n{result.stdout}{result.stderr}"
        blocks.clear()

    def console(self, block: Block, expected_exit: int) -> None:
        commands = parse_console(block)
        for number, (command, expected) in enumerate(commands, start=1):
            words = shlex.split(command)
            if words and words[0] == "export":
                for word in words[1:]:
                    name = word.partition("=")[0]
                    value = self.expand(command, name)
                    if name == "DB_CONNECTION_STRING":
                        value = self.database(value)
                    self.env[name] = value
                continue
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=self.workdir,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
            )
            code = expected_exit if number == len(commands) else 0
            output = result.stdout + result.stderr
            assert result.returncode == code, (
                f"{block.where}: '$ {command}' exited {result.returncode}, expected {code}:"
                f"\n{output}"
            )
            assert_output(block, command, expected, output)

    def expand(self, export: str, name: str) -> str:
        """The value ``export`` gives variable ``name``, expanded by bash (``$PWD``)."""
        result = subprocess.run(
            ["bash", "-c", f'{export}\nprintf "%s" "${name}"'],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=True,
        )
        return result.stdout

    def write(self, block: Block, path: str) -> None:
        target = self.workdir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code, encoding="utf-8")
        if target.suffix == ".toml" and tomllib is not None:
            tomllib.loads(block.code)
        elif target.suffix == ".py":
            compile(block.code, str(target), "exec")


def parse_console(block: Block) -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` pairs; a trailing backslash continues a command."""
    commands: list[tuple[str, list[str]]] = []
    lines = iter(block.code.splitlines())
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + " " + next(lines).strip()
            commands.append((command, []))
        elif line.strip():
            assert commands, f"{block.where}: output before the first '$ ' command"
            commands[-1][1].append(line.strip())
    assert commands, f"{block.where}: a console block without a '$ ' command"
    return commands


def assert_output(block: Block, command: str, expected: list[str], output: str) -> None:
    """Each expected line matches a line of ``output``, in order (``...`` is a wildcard)."""
    actual = [line.strip() for line in output.splitlines()]
    position = 0
    for wanted in expected:
        pattern = fnmatch.translate(wanted.replace("[", "[[]").replace("...", "*"))
        while position < len(actual) and not re.match(pattern, actual[position]):
            position += 1
        assert position < len(actual), (
            f"{block.where}: '$ {command}' did not print {wanted!r}; it printed:\n{output}"
        )
        position += 1


@pytest.fixture
def page_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PageRun]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DB_CONNECTION_STRING", "FLASK_", "ENTITYDB_TEST_URL", "PYTEST_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(workdir)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    drops: list[Callable[[], None]] = []

    def database(url: str) -> str:
        backend = sa.make_url(url).get_backend_name()
        if backend in {"mysql", "mariadb", "postgresql"}:
            variable = "ENTITYDB_TEST_MYSQL_URL" if backend != "postgresql" else None
            variable = variable or "ENTITYDB_TEST_POSTGRESQL_URL"
            if os.environ.get(variable):
                real, drop = create_database(
                    "postgresql" if backend == "postgresql" else "mysql", tmp_path
                )
                drops.append(drop)
                return real
            return f"sqlite:///{tmp_path / 'stand-in.sqlite3'}"
        return url

    yield PageRun(workdir, env, database)
    for drop in drops:
        drop()


def runnable_pages() -> list[Path]:
    return [
        page
        for page in PAGES
        if any(b.lang in _RUNNABLE and b.marker is None for b in code_blocks(page))
    ]


@pytest.mark.parametrize("page", runnable_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_page_samples_run(page: Path, page_run: PageRun) -> None:
    pending: list[Block] = []  # python blocks not run yet
    for block in code_blocks(page):
        kind, value = block.marker or ("", "")
        if kind in {"skip", "covered-by"}:
            continue
        if block.lang == "python" and kind != "file":
            pending.append(block)
            continue
        page_run.python(pending)
        if kind == "file":
            page_run.write(block, value)
        elif block.lang == "console":
            page_run.console(block, int(value) if kind == "exit" else 0)
    page_run.python(pending)


def test_every_config_key_is_documented() -> None:
    source = "".join(
        path.read_text(encoding="utf-8")
        for path in (ROOT / "flask_entitydb").rglob("*.py")
        # the pytest plugin's ENTITYDB_TEST_URL is documented on testing.md
        if not path.name.startswith("pytest_") and "_testing" not in path.parts
    )
    keys = set(re.findall(r"\b(ENTITYDB_[A-Z][A-Z_]*[A-Z])\b", source))
    assert "ENTITYDB_MIGRATIONS_DIR" in keys  # the search itself works
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert [key for key in sorted(keys) if f"| `{key}` |" not in page] == []


def test_every_constructor_option_is_documented() -> None:
    import inspect

    from flask_entitydb import EntityDB

    docstring = inspect.getdoc(EntityDB) or ""
    parameters = list(inspect.signature(EntityDB).parameters)
    assert "engine_options" in parameters
    assert [name for name in parameters if f":param {name}:" not in docstring] == []


# what a directive or role looks like when a page shows it instead of rendering it: rST
# directives (sphinx-click's output parsed as Markdown), MyST directives and roles
_RAW_DIRECTIVE = re.compile(
    r"^\s*\.\. [a-z][a-z:-]*::|^\s*:(?:prog|nested|members):|\{(?:click|eval-rst|doc|toctree)\}",
    re.MULTILINE,
)


def raw_directives(html_dir: Path) -> dict[str, list[str]]:
    """The raw directive text in the built pages' visible text, by page."""
    import html

    found: dict[str, list[str]] = {}
    for page in sorted(html_dir.glob("*.html")):
        body = page.read_text(encoding="utf-8")
        body = re.sub(r"<(script|style)\b.*?</\1>", "", body, flags=re.DOTALL)
        text = html.unescape(re.sub(r"<[^>]+>", "", body))
        hits = [match.group(0).strip() for match in _RAW_DIRECTIVE.finditer(text)]
        if hits:
            found[page.name] = hits
    return found


@pytest.mark.slow
def test_built_pages_hold_no_raw_directive_text(tmp_path: Path) -> None:
    """The built HTML shows no directive as text (the command reference of
    migrations.md once rendered as '.. program:: flask db', '.. option:: --bind', ...)."""
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "option:: --bind" not in (out / "migrations.html").read_text(encoding="utf-8")
    assert 'id="cmdoption-flask-db-upgrade-bind"' in (out / "migrations.html").read_text(
        encoding="utf-8"
    )
    assert raw_directives(out) == {}


def test_pages_use_links_github_renders() -> None:
    """GitHub shows MyST's '{doc}' roles as text: pages link with Markdown links."""
    for page in PAGES:
        assert "{doc}`" not in page.read_text(encoding="utf-8"), page.name


def test_read_the_docs_builds_them_as_here() -> None:
    config = (ROOT / ".readthedocs.yaml").read_text(encoding="utf-8")
    assert "configuration: docs/conf.py" in config
    assert "fail_on_warning: true" in config
    assert "requirements: docs/requirements.txt" in config
    requirements = (DOCS / "requirements.txt").read_text(encoding="utf-8")
    for name in ("sphinx", "myst-parser", "sphinx-click", "furo"):
        assert name in requirements
