"""Flask-SQLAlchemy-style models on flask-entitydb: ``db.Model``, ``db.Column``,
``db.relationship``, ``db.Table``, ``Model.query``; opt-in with
``EntityDB(flask_sqlalchemy_models=True)``.

They are Flask-SQLAlchemy's own: flask-entitydb runs on Flask-SQLAlchemy, and with the
option its :class:`~flask_sqlalchemy.SQLAlchemy` object's names are reachable through
``db``, so an app written for Flask-SQLAlchemy switches by changing its imports and the
``db =`` line. Models may live in any module: the modules named by
``ENTITYDB_MODEL_MODULES`` (default: the app package's ``models`` module or package, when
it exists) are imported before the migrations look at the metadata, after the app has
finished importing itself (so ``models.py`` may import ``db`` from the app module).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import orm

from flask_entitydb._settings.model_modules import MODEL_MODULES_KEY
from flask_entitydb.errors import EntityDiscoveryError

if TYPE_CHECKING:
    from flask_sqlalchemy.query import Query


class FlaskSQLAlchemyNames:
    """The names Flask-SQLAlchemy's ``db`` object offers, typed for the common ones.

    They exist only on an ``EntityDB(flask_sqlalchemy_models=True)``; any other name of
    :mod:`sqlalchemy` and :mod:`sqlalchemy.orm` (``db.Interval``, ``db.backref``, ...) is
    forwarded to Flask-SQLAlchemy at run time, as Flask-SQLAlchemy does.
    """

    if TYPE_CHECKING:
        Model: type[Any]
        """Flask-SQLAlchemy's declarative base (``db.Model``), with ``query``."""
        Query: type[Query]
        """The default query class of ``Model.query`` (``query_class=``)."""
        Table: Callable[..., sa.Table]
        """A ``Table`` whose metadata is the models' metadata."""
        Column = sa.Column
        ForeignKey = sa.ForeignKey
        Integer = sa.Integer
        BigInteger = sa.BigInteger
        SmallInteger = sa.SmallInteger
        String = sa.String
        Text = sa.Text
        Unicode = sa.Unicode
        UnicodeText = sa.UnicodeText
        Boolean = sa.Boolean
        Date = sa.Date
        DateTime = sa.DateTime
        Time = sa.Time
        Float = sa.Float
        Numeric = sa.Numeric
        Enum = sa.Enum
        LargeBinary = sa.LargeBinary
        JSON = sa.JSON
        UniqueConstraint = sa.UniqueConstraint
        CheckConstraint = sa.CheckConstraint
        Index = sa.Index
        func = sa.func
        select = staticmethod(sa.select)
        relationship = staticmethod(orm.relationship)
        backref = staticmethod(orm.backref)
    else:

        def __getattr__(self, name: str) -> Any:
            sqlalchemy = self.__dict__.get("_sqlalchemy")
            if (
                name.startswith("_")
                or sqlalchemy is None
                or not self.__dict__.get("_flask_sqlalchemy_models")
            ):
                hint = (
                    "; Flask-SQLAlchemy's names (db.Model, db.Column, ...) need"
                    " EntityDB(flask_sqlalchemy_models=True)"
                    if name[:1].isupper() or name in {"relationship", "backref", "func"}
                    else ""
                )
                raise AttributeError(f"'EntityDB' object has no attribute '{name}'{hint}")
            return getattr(sqlalchemy, name)


def import_model_modules(names: Sequence[str]) -> None:
    """Import the model modules (each once: the import system caches them).

    :raises EntityDiscoveryError: a module is missing or fails to import.
    """
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:
            first = str(error).strip().splitlines()
            detail = f"{type(error).__name__}: {first[0]}" if first else type(error).__name__
            raise EntityDiscoveryError(
                f"Cannot import model module '{name}' ({MODEL_MODULES_KEY}): {detail}."
            ) from error


def mapped_models(base: Any) -> dict[str, type[Any]]:
    """Class name -> model class of every class mapped on ``base``'s registry."""
    registry: orm.registry = base.registry
    return {mapper.class_.__name__: mapper.class_ for mapper in registry.mappers}
