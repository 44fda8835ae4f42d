"""Flask's private API: the context variable that holds the current app context."""

from __future__ import annotations

from contextvars import ContextVar

from flask.ctx import AppContext
from flask.globals import _cv_app


def app_context_var() -> ContextVar[AppContext]:
    """The context variable holding the current app context (Flask's private
    ``flask.globals._cv_app``, the variable behind the ``flask.globals.app_ctx`` proxy).

    Its ``get()`` is a single C call, where the proxy costs three Python calls; sessions
    are looked up by app context several times per request. ``get()`` raises
    :class:`LookupError` outside an app context.
    """
    return _cv_app
