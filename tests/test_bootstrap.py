"""The repository's own set-up: ``scripts/bootstrap`` and ``.gitignore`` cope with the
``.venv`` *file* that tox 4.6x leaves where the venv belongs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FAKE_PYTHON = """\
#!/bin/sh
# stands in for python3: '-m venv DIR' makes DIR/bin/python, which accepts anything
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0
fi
echo "$@" >> "$(dirname "$0")/calls"
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap", repo / "scripts" / "bootstrap")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    (repo / ".venv").write_text("/home/me/.tox/py311\n")  # what tox leaves
    return repo


def test_bootstrap_copes_with_a_venv_file(repo: Path, tmp_path: Path) -> None:
    python = tmp_path / "python3"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    if shutil.which("pkg-config") is None:
        pytest.fail("pkg-config is needed (scripts/bootstrap checks the MariaDB headers)")
    result = subprocess.run(
        [str(repo / "scripts" / "bootstrap")],
        env={**os.environ, "PYTHON": str(python)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"'{repo}/.venv' is a file, not a venv" in result.stdout
    assert (repo / ".venv" / "bin" / "python").is_file()
    assert (repo / ".venv.tox-link").read_text() == "/home/me/.tox/py311\n"  # kept
    calls = (repo / ".venv" / "bin" / "calls").read_text()
    assert f"-e {repo}[mysql,postgresql,test,dev]" in calls


def test_gitignore_ignores_a_venv_file(repo: Path) -> None:
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".venv.tox-link").write_text("x\n")
    for path in (".venv", ".venv.tox-link"):
        result = subprocess.run(
            ["git", "-C", str(repo), "check-ignore", "-q", path], capture_output=True
        )
        assert result.returncode == 0, f"{path} is not ignored"
