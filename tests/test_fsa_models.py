"""``EntityDB(flask_sqlalchemy_models=True)``: Flask-SQLAlchemy's model API on
flask-entitydb, and model modules imported before migrations (issue 15 item 4)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy.query import Query

from flask_entitydb import EntityDB, EntityDiscoveryError


class ActiveQuery(Query):
    def active(self) -> Query:
        return self.filter_by(active=True)


def test_models_use_flask_sqlalchemys_classes(make_app: Callable[..., Flask]) -> None:
    db = EntityDB(flask_sqlalchemy_models=True, query_class=ActiveQuery)
    tags = db.Table(
        "tags",
        db.Column("item_id", db.Integer, db.ForeignKey("item.id"), primary_key=True),
        db.Column("name", db.String(20), primary_key=True),
    )

    class Item(db.Model):  # type: ignore[misc, name-defined]
        id = db.Column(db.Integer, primary_key=True)
        active = db.Column(db.Boolean, nullable=False, default=True)
        parts = db.relationship("Part", backref="item", lazy="dynamic")

    class Part(db.Model):  # type: ignore[misc, name-defined]
        id = db.Column(db.Integer, primary_key=True)
        item_id = db.Column(db.Integer, db.ForeignKey("item.id"))

    app = make_app(SQLALCHEMY_DATABASE_URI="sqlite://")
    with pytest.warns(UserWarning) as caught:
        db.init_app(app)
        import warnings

        warnings.warn("sentinel", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["sentinel"]  # no "No entity classes found"
    with app.app_context():
        assert set(db.metadata.tables) == {"item", "part", "tags"}
        assert tags.metadata is db.metadata
        db.create_all()
        db.session.add_all([Item(id=1), Item(id=2, active=False), Part(item_id=1)])
        db.session.commit()
        assert [item.id for item in Item.query.active()] == [1]
        assert isinstance(Item.query, ActiveQuery)
        assert Item.query.filter_by(id=1).first_or_404().parts.count() == 1
        assert Item.query.paginate(page=1, per_page=1).total == 2
        assert set(db.entities) == {"Item", "Part"}
        assert db.session.get(Item, 2) is not None


def test_the_names_need_the_option() -> None:
    db = EntityDB()
    with pytest.raises(AttributeError, match=r"need EntityDB\(flask_sqlalchemy_models=True\)"):
        db.Model  # noqa: B018
    with pytest.raises(TypeError, match="add 'flask_sqlalchemy_models=True'"):
        EntityDB(query_class=ActiveQuery)
    with pytest.raises(TypeError, match="pass 'model_class=' instead of 'base='"):
        EntityDB(flask_sqlalchemy_models=True, base=sa.orm.DeclarativeBase)  # type: ignore[type-abstract]


@pytest.fixture
def app_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    package = tmp_path / "shop_fsa"
    (package / "catalog").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from flask_entitydb import EntityDB\n\ndb = EntityDB(flask_sqlalchemy_models=True)\n"
    )
    model = (
        "from shop_fsa import db\n\n\n"
        "class {name}(db.Model):\n    id = db.Column(db.Integer, primary_key=True)\n"
    )
    (package / "models.py").write_text(model.format(name="Order"))
    (package / "catalog" / "__init__.py").write_text("")
    (package / "catalog" / "products.py").write_text(model.format(name="Product"))
    yield package
    for name in [m for m in sys.modules if m.startswith("shop_fsa")]:
        del sys.modules[name]


def test_model_modules_are_imported_before_the_metadata_is_read(
    app_package: Path, make_app: Callable[..., Flask]
) -> None:
    import shop_fsa  # type: ignore[import-not-found]

    app = make_app("shop_fsa", SQLALCHEMY_DATABASE_URI="sqlite://")
    shop_fsa.db.init_app(app)
    assert "shop_fsa.models" not in sys.modules  # not at init_app: models.py imports db
    with app.app_context():
        assert set(shop_fsa.db.metadata.tables) == {"order"}  # the default: <app>.models
    configured = make_app(
        "shop_fsa",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        ENTITYDB_MODEL_MODULES=["shop_fsa.models", "shop_fsa.catalog.products"],
    )
    other = EntityDB(flask_sqlalchemy_models=True)
    other.init_app(configured)
    with configured.app_context():
        other.metadata  # noqa: B018
    assert "shop_fsa.catalog.products" in sys.modules

    broken = make_app(
        "shop_fsa", SQLALCHEMY_DATABASE_URI="sqlite://", ENTITYDB_MODEL_MODULES="shop_fsa.nope"
    )
    third = EntityDB(flask_sqlalchemy_models=True)
    third.init_app(broken)
    with (
        broken.app_context(),
        pytest.raises(
            EntityDiscoveryError,
            match=r"Cannot import model module 'shop_fsa.nope' \(ENTITYDB_MODEL",
        ),
    ):
        third.metadata  # noqa: B018
