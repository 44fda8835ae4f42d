"""One session per Flask app context, found with a single context-variable lookup.

Flask-SQLAlchemy scopes its session to the app context through a scope function that
goes through Flask's ``app_ctx`` proxy: three Python calls each time ``db.session`` is
used, several times per request. The registry here reads the context variable behind that
proxy directly, a single C call, and keys the sessions by the same app context object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask
from flask.globals import _cv_app
from sqlalchemy.util import ScopedRegistry

_T = TypeVar("_T")

OUTSIDE_APP_CONTEXT = (
    "Working outside of application context: 'db.session' belongs to an app context;"
    " push one with 'with app.app_context():' (a request or the 'flask' command push one"
    " for you)."
)


def current_context() -> Any:
    """The current app context.

    :raises RuntimeError: there is none.
    """
    try:
        return _cv_app.get()
    except LookupError:
        raise RuntimeError(OUTSIDE_APP_CONTEXT) from None


def current_app_object() -> Flask:
    """The current app, without going through the ``current_app`` proxy.

    :raises RuntimeError: there is no app context.
    """
    return current_context().app  # type: ignore[no-any-return]


class AppContextRegistry(ScopedRegistry[_T]):
    """A :class:`~sqlalchemy.util.ScopedRegistry` keyed by the current Flask app context,
    for ``scoped_session.registry``."""

    def __init__(self, createfunc: Callable[[], _T]) -> None:
        super().__init__(createfunc, current_context)

    def __call__(self) -> _T:
        # current_context(), inlined: this runs each time db.session is used
        try:
            key = _cv_app.get()
        except LookupError:
            raise RuntimeError(OUTSIDE_APP_CONTEXT) from None
        try:
            return self.registry[key]  # type: ignore[no-any-return]
        except KeyError:
            return self.registry.setdefault(key, self.createfunc())  # type: ignore[no-any-return]

    def has(self) -> bool:
        """Whether the current app context has a session (``False`` outside one)."""
        return _cv_app.get(None) in self.registry

    def clear(self) -> None:
        """Forget the current app context's session, if any."""
        self.registry.pop(_cv_app.get(None), None)
