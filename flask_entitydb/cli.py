"""The ``flask db`` command group."""

from __future__ import annotations

import click
from flask.cli import AppGroup

db_group = AppGroup("db", help="Database migrations (Alembic) and entity discovery.")
