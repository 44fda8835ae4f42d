"""Sphinx configuration for the flask-entitydb documentation (MyST Markdown pages)."""

from __future__ import annotations

import logging

import flask_entitydb

project = "flask-entitydb"
copyright = "flask-entitydb developers"
version = release = flask_entitydb.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx_click",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}

html_theme = "furo"
html_title = f"flask-entitydb {release}"

# importing the migrations API for autodoc sets up Alembic's plugins, which log at INFO
logging.getLogger("alembic").setLevel(logging.WARNING)
