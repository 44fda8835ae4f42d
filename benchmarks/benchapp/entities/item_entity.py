"""The one entity the request benchmarks read and write."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from flask_entitydb import Entity


class Item(Entity):
    """A row with a primary key and a short name."""

    __tablename__ = "bench_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
