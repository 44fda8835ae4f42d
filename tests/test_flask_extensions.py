"""The Flask extensions that expect a Flask-SQLAlchemy instance, on an EntityDB app
(issue 29, item 2; the table in docs/flask-extensions.md).

``db.sqlalchemy`` is the :class:`flask_sqlalchemy.SQLAlchemy` instance EntityDB runs on,
registered as ``app.extensions["sqlalchemy"]``: the extensions that check for that class
(Flask-Session, Flask-Admin) take it; those that only use ``db.session``
(Flask-Security's datastore, Flask-Login's user loader) take ``db`` itself; and
flask-marshmallow finds it in ``app.extensions``. Each test drives the extension as a
user of the app would (requests, rows in the database).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, session
from helpers.migration_apps import AppPackage

from flask_entitydb import migrations

USERS = """\
from flask_login import UserMixin as LoginUserMixin
from flask_security import RoleMixin, UserMixin
from sqlalchemy.orm import relationship

roles_users = sa.Table(
    "roles_users",
    Base.metadata,
    sa.Column("user_id", sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("role_id", sa.ForeignKey("roles.id"), primary_key=True),
)


class Role(Base, RoleMixin):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    description: Mapped[str | None] = mapped_column(sa.String(255))
    permissions: Mapped[str | None] = mapped_column(sa.UnicodeText)


class User(Base, UserMixin):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    password: Mapped[str | None] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    fs_uniquifier: Mapped[str] = mapped_column(sa.String(64), unique=True)
    confirmed_at: Mapped[datetime.datetime | None]
    roles: Mapped[list[Role]] = relationship(secondary=roles_users, backref="users")


class Member(Base, LoginUserMixin):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
"""


def _app(package: AppPackage, **config: Any) -> tuple[Flask, Any, Any]:
    """The package's app with the users entities, its tables created; (app, db, module)."""
    package.write_entity("user", USERS)
    app = package.create_app(SECRET_KEY="test", TESTING=True, **config)
    module = __import__(f"{package.name}.entities.user_entity", fromlist=["User"])
    db = app.extensions["entitydb"].db
    with app.app_context():
        db.create_all()
    return app, db, module


def test_the_flask_sqlalchemy_instance_is_the_registered_one(sqlite_package: AppPackage) -> None:
    from flask_sqlalchemy import SQLAlchemy

    app, db, _ = _app(sqlite_package)
    assert isinstance(db.sqlalchemy, SQLAlchemy)
    assert app.extensions["sqlalchemy"] is db.sqlalchemy
    assert db.sqlalchemy.session is db.session
    with app.app_context():
        assert db.sqlalchemy.engine is db.engine


def test_flask_session_sqlalchemy_backend(sqlite_package: AppPackage) -> None:
    from flask_session import Session

    package = sqlite_package
    app, db, _ = _app(
        package,
        SESSION_TYPE="sqlalchemy",
        # Flask-Session creates its table itself: the migrations leave it alone
        ENTITYDB_EXCLUDE_TABLES=["sessions"],
    )
    app.config["SESSION_SQLALCHEMY"] = db.sqlalchemy
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "No valid SQLAlchemy instance provided"
        Session(app)

    @app.get("/count")
    def count() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    client = app.test_client()
    assert [client.get("/count").text for _ in range(3)] == ["1", "2", "3"]
    assert package.scalar("SELECT count(*) FROM sessions") == 1

    # the migrations see the entities' tables, not Flask-Session's
    with app.app_context():
        db.drop_all()
        migrations.init()
        new = migrations.migrate(message="users")
        assert new is not None and "sessions" not in " ".join(new.changes)
        migrations.upgrade()
        assert migrations.check().ok
    assert package.scalar("SELECT count(*) FROM sessions") == 1


def test_flask_admin_model_view(sqlite_package: AppPackage) -> None:
    from flask_admin import Admin
    from flask_admin.contrib.sqla import ModelView

    package = sqlite_package
    app, db, entities = _app(package)
    admin = Admin(app)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Flask-Admin 2 deprecates ModelView(Model, db.session)
        admin.add_view(ModelView(entities.Member, db.sqlalchemy))
    client = app.test_client()
    created = client.post("/admin/member/new/", data={"name": "ann"})
    assert created.status_code == 302, created.text
    assert package.scalar("SELECT name FROM members") == "ann"
    listed = client.get("/admin/member/")
    assert listed.status_code == 200 and "ann" in listed.text


def test_flask_admin_takes_the_session_too(sqlite_package: AppPackage) -> None:
    from flask_admin import Admin
    from flask_admin.contrib.sqla import ModelView

    app, db, entities = _app(sqlite_package)
    with app.app_context():
        db.session.add(entities.Member(name="bob"))
        db.session.commit()
    with pytest.warns(DeprecationWarning, match="Passing a session object directly"):
        view = ModelView(entities.Member, db.session)
    Admin(app).add_view(view)
    assert "bob" in app.test_client().get("/admin/member/").text


def test_flask_login_with_a_user_entity(sqlite_package: AppPackage) -> None:
    from flask_login import LoginManager, current_user, login_user

    app, db, entities = _app(sqlite_package)
    login = LoginManager(app)

    @login.user_loader
    def load(user_id: str) -> Any:
        return db.session.get(entities.Member, int(user_id))

    @app.post("/login/<int:member_id>")
    def log_in(member_id: int) -> str:
        login_user(db.get_or_404(entities.Member, member_id))
        return "ok"

    @app.get("/me")
    def me() -> str:
        return current_user.name if current_user.is_authenticated else "anonymous"

    with app.app_context():
        db.session.add(entities.Member(name="cy"))
        db.session.commit()
    client = app.test_client()
    assert client.get("/me").text == "anonymous"
    assert client.post("/login/1").text == "ok"
    assert client.get("/me").text == "cy"
    assert client.post("/login/2").status_code == 404


def test_flask_security_sqlalchemy_user_datastore(sqlite_package: AppPackage) -> None:
    from flask_security import Security, SQLAlchemyUserDatastore, auth_required, hash_password

    package = sqlite_package
    app, db, entities = _app(
        package,
        SECURITY_PASSWORD_SALT="salt",
        SECURITY_PASSWORD_HASH="pbkdf2_sha512",
        WTF_CSRF_ENABLED=False,
    )
    datastore = SQLAlchemyUserDatastore(db, entities.User, entities.Role)
    Security(app, datastore)

    @app.get("/private")
    @auth_required()
    def private() -> str:
        return "secret"

    with app.app_context():
        user = datastore.create_user(email="dee@example.com", password=hash_password("pw-1234"))
        datastore.add_role_to_user(user, datastore.find_or_create_role("admin"))
        datastore.commit()
        found = datastore.find_user(email="dee@example.com")
        assert found is not None and found.has_role("admin")
    assert package.scalar("SELECT count(*) FROM roles_users") == 1

    client = app.test_client()
    assert client.get("/private", headers={"Accept": "application/json"}).status_code == 401
    logged_in = client.post("/login", json={"email": "dee@example.com", "password": "pw-1234"})
    assert logged_in.status_code == 200, logged_in.text
    assert client.get("/private").text == "secret"


def test_flask_marshmallow_auto_schema(sqlite_package: AppPackage) -> None:
    from flask_marshmallow import Marshmallow

    package = sqlite_package
    app, db, entities = _app(package)
    ma = Marshmallow(app)

    class MemberSchema(ma.SQLAlchemyAutoSchema):  # type: ignore[name-defined,misc]
        class Meta:
            model = entities.Member
            load_instance = True

    with app.app_context():
        member = MemberSchema().load({"name": "eve"})
        assert isinstance(member, entities.Member)
        db.session.add(member)
        db.session.commit()
        assert MemberSchema().dump(db.session.scalars(sa.select(entities.Member)).one()) == {
            "id": 1,
            "name": "eve",
        }
    assert package.scalar("SELECT name FROM members") == "eve"


def test_passing_entitydb_where_flask_session_wants_sqlalchemy_fails_loudly(
    sqlite_package: AppPackage,
) -> None:
    """What the docs warn about: Flask-Session checks the class, so ``db`` itself is
    refused (it then tries to register a second instance); ``db.sqlalchemy`` is the one."""
    from flask_session import Session

    app, db, _ = _app(sqlite_package, SESSION_TYPE="sqlalchemy")
    app.config["SESSION_SQLALCHEMY"] = db
    with (
        pytest.warns(RuntimeWarning, match="No valid SQLAlchemy instance"),
        pytest.raises(RuntimeError, match="already been registered"),
    ):
        Session(app)
