"""The release metadata agrees with itself: the package version is the newest version
CHANGES.md lists, which is either unreleased or dated."""

from __future__ import annotations

import re
from pathlib import Path

import flask_entitydb

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_the_newest_in_the_changelog() -> None:
    text = (ROOT / "CHANGES.md").read_text()
    sections = re.findall(r"^## Version (\S+)\n\n(.+)$", text, re.MULTILINE)
    assert sections, "CHANGES.md has no '## Version X.Y.Z' section"
    version, status = sections[0]
    assert flask_entitydb.__version__ == version
    assert status == "Unreleased" or re.fullmatch(r"Released \d{4}-\d{2}-\d{2}", status)
    # every version is listed once
    versions = [v for v, _ in sections]
    assert len(versions) == len(set(versions))
