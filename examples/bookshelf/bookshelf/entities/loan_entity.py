"""Loans: who borrowed which book, and whether it came back."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_entitydb import Entity

if TYPE_CHECKING:
    from .book_entity import Book


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


class Loan(Entity):
    """A book lent to someone; open until ``returned_at`` is set."""

    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"))
    borrower: Mapped[str] = mapped_column(String(120))
    loaned_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    returned_at: Mapped[datetime | None] = mapped_column(DateTime)

    book: Mapped[Book] = relationship(back_populates="loans")

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "book_id": self.book_id,
            "borrower": self.borrower,
            "loaned_at": self.loaned_at.isoformat(),
            "returned_at": self.returned_at.isoformat() if self.returned_at else None,
        }
