"""The bookshelf's endpoints, each test in its own transaction (``entitydb_session``)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, scoped_session

from bookshelf.entities.author_entity import Author
from bookshelf.entities.book_entity import Book
from bookshelf.entities.loan_entity import Loan


@pytest.fixture(autouse=True)
def _each_test_in_a_transaction(entitydb_transaction: object) -> None:
    """Every test here runs in a transaction that is rolled back afterwards, including the
    requests it makes through ``client``: views may commit, nothing is left behind."""


def test_adding_a_book_creates_its_author(
    client: FlaskClient, entitydb_session: scoped_session[Session]
) -> None:
    response = client.post("/api/books", json={"title": "Emma", "author": "Jane Austen"})
    assert response.status_code == 201
    assert response.json == {
        "id": response.json["id"],
        "title": "Emma",
        "isbn": None,
        "author": "Jane Austen",
        "shelf": None,
        "on_loan": False,
    }
    # the view committed; the test's session sees the rows
    assert entitydb_session.scalars(sa.select(Author.name)).all() == ["Jane Austen"]
    client.post("/api/books", json={"title": "Persuasion", "author": "Jane Austen"})
    assert entitydb_session.scalar(sa.select(sa.func.count()).select_from(Author)) == 1


def test_every_test_starts_with_an_empty_database(
    entitydb_session: scoped_session[Session],
) -> None:
    # the other tests commit books; each one's rows are rolled back afterwards
    assert entitydb_session.scalar(sa.select(sa.func.count()).select_from(Book)) == 0


def test_books_go_on_existing_shelves_only(client: FlaskClient) -> None:
    assert client.post("/api/shelves", json={"name": "Kitchen"}).status_code == 201
    book = {"title": "Salt Fat Acid Heat", "author": "Samin Nosrat", "shelf": "Kitchen"}
    assert client.post("/api/books", json=book).json["shelf"] == "Kitchen"
    missing = client.post("/api/books", json=book | {"shelf": "Attic"})
    assert missing.status_code == 404
    assert missing.json == {"error": "There is no shelf named 'Attic'."}


def test_duplicates_are_refused_and_rolled_back(
    client: FlaskClient, entitydb_session: scoped_session[Session]
) -> None:
    assert client.post("/api/shelves", json={"name": "Hall"}).status_code == 201
    again = client.post("/api/shelves", json={"name": "Hall"})
    assert again.status_code == 409
    assert again.json == {"error": "A shelf named 'Hall' already exists."}
    book = {"title": "Dune", "author": "Frank Herbert", "isbn": "978-0441013593"}
    assert client.post("/api/books", json=book).status_code == 201
    assert client.post("/api/books", json=book | {"title": "Dune (2)"}).status_code == 409
    assert entitydb_session.scalars(sa.select(Book.title)).all() == ["Dune"]


def test_a_book_is_lent_once_until_returned(
    client: FlaskClient, entitydb_session: scoped_session[Session]
) -> None:
    book_id = client.post("/api/books", json={"title": "Dune", "author": "Frank Herbert"}).json[
        "id"
    ]
    loan = client.post(f"/api/books/{book_id}/loans", json={"borrower": "Ann"})
    assert loan.status_code == 201
    second = client.post(f"/api/books/{book_id}/loans", json={"borrower": "Bob"})
    assert second.status_code == 409
    assert client.get(f"/api/books/{book_id}").json["on_loan"] is True

    returned = client.post(f"/api/loans/{loan.json['id']}/return")
    assert returned.json["returned_at"] is not None
    assert client.post(f"/api/books/{book_id}/loans", json={"borrower": "Bob"}).status_code == 201
    borrowers = entitydb_session.scalars(sa.select(Loan.borrower).order_by(Loan.id)).all()
    assert borrowers == ["Ann", "Bob"]


def test_missing_fields_and_rows(client: FlaskClient) -> None:
    response = client.post("/api/books", json={"author": "Nobody"})
    assert response.status_code == 400
    assert response.json == {"error": "'title' is required."}
    assert client.post("/api/authors", json=["not", "an", "object"]).status_code == 400
    assert client.get("/api/books/12345").json == {"error": "There is no book 12345."}


def test_books_are_paginated(client: FlaskClient) -> None:
    for number in range(5):
        client.post("/api/books", json={"title": f"Volume {number}", "author": "Anon"})
    page = client.get("/api/books?page=2&per_page=2").json
    assert [book["title"] for book in page["books"]] == ["Volume 2", "Volume 3"]
    assert page["total"] == 5


def test_index_page_lists_shelves_and_books(client: FlaskClient) -> None:
    client.post("/api/shelves", json={"name": "Kitchen"})
    client.post("/api/books", json={"title": "Dune", "author": "Frank Herbert"})
    client.post("/api/books", json={"title": "Jam", "author": "Ann", "shelf": "Kitchen"})
    page = client.get("/").text
    assert "<h2>Kitchen</h2>" in page
    assert "Jam by Ann" in page
    assert "Dune by Frank Herbert" in page


def test_api_errors_are_json_even_before_a_view_is_found(client: FlaskClient) -> None:
    wrong_method = client.delete("/api/books")
    assert wrong_method.status_code == 405
    assert wrong_method.is_json and "error" in wrong_method.json
    assert set(wrong_method.headers["Allow"].split(", ")) >= {"GET", "POST"}
    unknown = client.get("/api/nothing-here")
    assert unknown.status_code == 404
    assert unknown.is_json and "error" in unknown.json
    page = client.get("/nothing-here")  # outside the API: Flask's usual page
    assert page.status_code == 404 and page.mimetype == "text/html"
