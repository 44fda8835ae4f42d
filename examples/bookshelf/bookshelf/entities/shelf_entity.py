"""Shelves that books stand on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_entitydb import Entity

if TYPE_CHECKING:
    from .book_entity import Book


class Shelf(Entity):
    """A named shelf, for example 'Kitchen' or 'To read'."""

    __tablename__ = "shelves"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)

    books: Mapped[list[Book]] = relationship(back_populates="shelf")

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name}
