"""Authors of books."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_entitydb import Entity

if TYPE_CHECKING:
    from .book_entity import Book


class Author(Entity):
    """Someone who wrote at least one book on the shelves."""

    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)

    books: Mapped[list[Book]] = relationship(back_populates="author")

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name}
