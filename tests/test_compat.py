"""The private APIs of other libraries that ``flask_entitydb._compat`` adapts: each test
fails when the upstream behaviour an adapter relies on changes."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.globals import app_ctx
from sqlalchemy import orm
from sqlalchemy.util import ScopedRegistry

from flask_entitydb._compat.flask import app_context_var
from flask_entitydb._compat.sqlalchemy import (
    after_commit,
    flushing_property,
    locks_rows,
    mix_into_sessions,
    scoped_registry,
    use_registry,
)


class _Base(orm.DeclarativeBase):
    pass


class _Thing(_Base):
    __tablename__ = "compat_thing"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)


# -- Flask -----------------------------------------------------------------------------


def test_app_context_var_holds_the_current_app_context() -> None:
    app = Flask(__name__)
    var = app_context_var()
    with pytest.raises(LookupError):
        var.get()
    assert var.get(None) is None
    with app.app_context() as outer:
        assert var.get() is outer
        assert var.get() is app_ctx._get_current_object()  # type: ignore[attr-defined]
        with app.app_context() as inner:
            assert var.get() is inner
        assert var.get() is outer
    with app.test_request_context():
        assert var.get().app is app
    assert var.get(None) is None


# -- SQLAlchemy ------------------------------------------------------------------------


class _Recording(orm.Session):
    flushing = flushing_property()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: list[tuple[str, bool]] = []

    def get_bind(self, mapper: Any = None, clause: Any = None, **kwargs: Any) -> Any:
        self.seen.append(("get_bind", self.flushing))
        return super().get_bind(mapper, clause=clause, **kwargs)


def test_flushing_property_is_true_while_the_session_flushes() -> None:
    engine = sa.create_engine("sqlite://")
    _Base.metadata.create_all(engine)

    @sa.event.listens_for(_Recording, "before_flush")
    def before_flush(session: _Recording, context: Any, instances: Any) -> None:
        session.seen.append(("before_flush", session.flushing))

    try:
        with _Recording(bind=engine) as session:
            assert session.flushing is False
            session.add(_Thing(id=1))
            session.flush()
            assert session.flushing is False
            flushed = session.seen
            session.seen = []
            session.execute(sa.select(_Thing)).all()
            read = session.seen
            with pytest.raises(AttributeError):
                session.flushing = True
    finally:
        sa.event.remove(_Recording, "before_flush", before_flush)
    assert ("before_flush", True) in flushed
    # the flush asks get_bind() for its connection while the flag is set
    assert ("get_bind", True) in flushed
    assert read and all(flag is False for _, flag in read)


def test_use_registry_makes_the_scoped_session_keep_its_sessions_there() -> None:
    scope = ["a"]
    scoped = orm.scoped_session(orm.sessionmaker())
    registry: ScopedRegistry[orm.Session] = ScopedRegistry(scoped.session_factory, lambda: scope[0])
    use_registry(scoped, registry)
    assert scoped_registry(scoped) is registry
    first = scoped()
    assert registry.has() and registry() is first
    thing = _Thing(id=1)
    scoped.add(thing)  # the proxied methods go through the registry too
    assert thing in first
    scope[0] = "b"
    assert not registry.has()
    assert scoped() is not first
    scoped.remove()
    assert not registry.has()
    scope[0] = "a"
    assert scoped() is first
    scoped.remove()
    assert not registry.has()
    assert thing not in first  # remove() closed it


def test_mix_into_sessions_changes_the_class_of_new_sessions_and_keeps_listeners() -> None:
    class Mixin:
        def marker(self) -> str:
            return "mixed"

    factory = orm.sessionmaker()
    original = factory.class_
    attached: list[object] = []
    sa.event.listen(factory, "after_attach", lambda session, instance: attached.append(instance))
    mix_into_sessions(factory, Mixin)
    mixed = factory.class_
    mix_into_sessions(factory, Mixin)
    assert factory.class_ is mixed  # once only
    with factory() as session:
        assert isinstance(session, Mixin) and isinstance(session, original)
        assert session.marker() == "mixed"
        thing = _Thing(id=1)
        session.add(thing)
    assert attached == [thing]
    # sessionmaker.configure() passes class_ on to the session instead of using it
    factory.configure(class_=Mixin)
    with pytest.raises(TypeError):
        factory()


def test_locks_rows_sees_every_row_locking_select() -> None:
    query = sa.select(_Thing)
    assert not locks_rows(query)
    assert locks_rows(query.with_for_update())
    assert locks_rows(query.with_for_update(read=True))  # FOR SHARE
    assert locks_rows(query.with_for_update(skip_locked=True).limit(1))
    assert not locks_rows(sa.text("SELECT 1"))


def test_after_commit_follows_every_way_of_committing(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'commits.db'}")
    _Base.metadata.create_all(engine)
    other = sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    commits: list[str] = []
    after_commit(engine, lambda: commits.append("commit"))
    factory = orm.sessionmaker(engine)
    with factory() as session:
        session.add(_Thing(id=1))
        session.commit()
    assert commits == ["commit"]
    with factory() as session, session.begin():
        session.add(_Thing(id=2))
    assert len(commits) == 2
    with factory() as session:
        with session.begin_nested():  # a savepoint's release is no commit
            session.add(_Thing(id=3))
        assert len(commits) == 2
        session.commit()
    assert len(commits) == 3
    with engine.connect() as connection:
        connection.execute(sa.insert(_Thing).values(id=4))
        connection.commit()
    with engine.begin() as connection:
        connection.execute(sa.insert(_Thing).values(id=5))
    assert len(commits) == 5
    with engine.connect() as connection:
        connection.execute(sa.select(_Thing)).all()
        connection.rollback()
    assert len(commits) == 5
    with other.begin() as connection:  # another engine's dialect is its own
        connection.execute(sa.text("SELECT 1"))
    assert len(commits) == 5
    assert not engine.dispatch.commit  # no connection event: statements dispatch nothing
    engine.dispose()
    other.dispose()
