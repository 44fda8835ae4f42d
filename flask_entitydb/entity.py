"""The default declarative base that ``*_entity.py`` modules subclass."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""The constraint naming convention of :class:`Entity`.

Every index, unique, foreign key, check and primary key constraint gets a deterministic
name, so Alembic can drop or alter it later, on MySQL and in SQLite batch mode. Names that
are too long for the database are shortened by SQLAlchemy with a stable hash suffix.
Use it for your own base: ``MetaData(naming_convention=NAMING_CONVENTION)``.
"""


class Entity(DeclarativeBase):
    """The default base class of entities.

    Entity modules subclass it without importing the application::

        from sqlalchemy.orm import Mapped, mapped_column
        from flask_entitydb import Entity

        class User(Entity):
            __tablename__ = "users"
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str] = mapped_column(String(80))

    An application that wants its own base passes it as ``EntityDB(base=MyBase)``.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
