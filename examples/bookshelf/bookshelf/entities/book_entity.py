"""Books: each has one author and stands on at most one shelf."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_entitydb import Entity

if TYPE_CHECKING:
    from .author_entity import Author
    from .loan_entity import Loan
    from .shelf_entity import Shelf


class Book(Entity):
    """One copy of a book."""

    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200), index=True)
    isbn: Mapped[str | None] = mapped_column(String(17), unique=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    shelf_id: Mapped[int | None] = mapped_column(ForeignKey("shelves.id"))

    author: Mapped[Author] = relationship(back_populates="books")
    shelf: Mapped[Shelf | None] = relationship(back_populates="books")
    loans: Mapped[list[Loan]] = relationship(back_populates="book", order_by="Loan.id")

    @property
    def on_loan(self) -> bool:
        """Whether the book is lent out right now."""
        return any(loan.returned_at is None for loan in self.loans)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "isbn": self.isbn,
            "author": self.author.name,
            "shelf": self.shelf.name if self.shelf else None,
            "on_loan": self.on_loan,
        }
