"""A fresh declarative base per test module, so tables of different modules never meet
in one metadata."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from flask_entitydb import NAMING_CONVENTION


def new_base() -> Any:
    """A new ``DeclarativeBase`` subclass with the package's naming convention (typed
    ``Any`` so that entity classes may derive from it)."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)

    return Base
