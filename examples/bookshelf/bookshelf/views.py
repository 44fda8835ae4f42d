"""Pages and JSON endpoints; every read and write goes through ``db.session``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import HTTPException

from .database import db
from .entities.author_entity import Author
from .entities.book_entity import Book
from .entities.loan_entity import Loan
from .entities.shelf_entity import Shelf

pages = Blueprint("pages", __name__)
api = Blueprint("api", __name__)


def _json() -> dict[str, Any]:
    data = request.get_json(force=True)
    if not isinstance(data, dict):
        abort(400, description="Send a JSON object.")
    return data


def _field(data: dict[str, Any], name: str, *, required: bool = True) -> Any:
    value = data.get(name)
    if required and (value is None or (isinstance(value, str) and not value.strip())):
        abort(400, description=f"'{name}' is required.")
    return value.strip() if isinstance(value, str) else value


def _commit_or_409(message: str) -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        abort(409, description=message)


def http_error(error: HTTPException) -> ResponseReturnValue:
    """HTTP errors under ``/api`` as JSON, also those raised before a view was found
    (404 for an unknown URL, 405 for a wrong method); elsewhere Flask's usual pages."""
    if request.path != "/api" and not request.path.startswith("/api/"):
        return error
    response = jsonify(error=error.description)
    response.status_code = error.code or 500
    for name, value in error.get_headers():
        if name == "Allow":  # 405: the methods the URL takes
            response.headers[name] = value
    return response


@pages.get("/")
def index() -> str:
    shelves = db.session.scalars(
        sa.select(Shelf).options(selectinload(Shelf.books)).order_by(Shelf.name)
    ).all()
    unshelved = db.session.scalars(
        sa.select(Book).where(Book.shelf_id.is_(None)).order_by(Book.title)
    ).all()
    return render_template("index.html", shelves=shelves, unshelved=unshelved)


@api.get("/authors")
def list_authors() -> ResponseReturnValue:
    authors = db.session.scalars(sa.select(Author).order_by(Author.name))
    return jsonify([author.to_dict() for author in authors])


@api.post("/authors")
def create_author() -> ResponseReturnValue:
    data = _json()
    author = Author(name=_field(data, "name"))
    db.session.add(author)
    _commit_or_409(f"An author named '{author.name}' already exists.")
    return jsonify(author.to_dict()), 201


@api.get("/shelves")
def list_shelves() -> ResponseReturnValue:
    shelves = db.session.scalars(sa.select(Shelf).order_by(Shelf.name))
    return jsonify([shelf.to_dict() for shelf in shelves])


@api.post("/shelves")
def create_shelf() -> ResponseReturnValue:
    data = _json()
    shelf = Shelf(name=_field(data, "name"))
    db.session.add(shelf)
    _commit_or_409(f"A shelf named '{shelf.name}' already exists.")
    return jsonify(shelf.to_dict()), 201


@api.get("/books")
def list_books() -> ResponseReturnValue:
    """Books by title, 20 a page: ``?page=2&per_page=50``."""
    page = db.paginate(sa.select(Book).order_by(Book.title, Book.id), max_per_page=100)
    return jsonify(books=[book.to_dict() for book in page.items], page=page.page, total=page.total)


@api.post("/books")
def create_book() -> ResponseReturnValue:
    """Add a book: ``{"title": ..., "author": name, "isbn"?: ..., "shelf"?: name}``.

    The author is created when there is none of that name yet.
    """
    data = _json()
    author_name = _field(data, "author")
    author = db.session.scalar(sa.select(Author).where(Author.name == author_name))
    if author is None:
        author = Author(name=author_name)
    shelf = None
    shelf_name = _field(data, "shelf", required=False)
    if shelf_name:
        shelf = db.first_or_404(
            sa.select(Shelf).where(Shelf.name == shelf_name),
            description=f"There is no shelf named '{shelf_name}'.",
        )
    book = Book(
        title=_field(data, "title"),
        isbn=_field(data, "isbn", required=False),
        author=author,
        shelf=shelf,
    )
    db.session.add(book)
    _commit_or_409(f"A book with ISBN '{book.isbn}' already exists.")
    return jsonify(book.to_dict()), 201


@api.get("/books/<int:book_id>")
def get_book(book_id: int) -> ResponseReturnValue:
    book = db.get_or_404(Book, book_id, description=f"There is no book {book_id}.")
    return jsonify(book.to_dict() | {"loans": [loan.to_dict() for loan in book.loans]})


@api.post("/books/<int:book_id>/loans")
def lend_book(book_id: int) -> ResponseReturnValue:
    book = db.get_or_404(Book, book_id, description=f"There is no book {book_id}.")
    if book.on_loan:
        abort(409, description=f"Book {book_id} is already on loan.")
    loan = Loan(book=book, borrower=_field(_json(), "borrower"))
    db.session.add(loan)
    db.session.commit()
    return jsonify(loan.to_dict()), 201


@api.post("/loans/<int:loan_id>/return")
def return_book(loan_id: int) -> ResponseReturnValue:
    loan = db.get_or_404(Loan, loan_id, description=f"There is no loan {loan_id}.")
    if loan.returned_at is None:
        loan.returned_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
        db.session.commit()
    return jsonify(loan.to_dict())
