"""The client's last write, in a sealed cookie of its own (encrypted and signed with the
app's ``SECRET_KEY``, :mod:`~flask_entitydb._engine.sealing`): read on each replica read,
written on the response of a request that committed on a primary."""

from __future__ import annotations

import functools
import time
from functools import partial

from flask import after_this_request, current_app, g, request
from werkzeug.wrappers import Request, Response

from flask_entitydb._engine.sealing import Sealer, Unsealable

COOKIE_NAME = "entitydb_write"
"""Name of the cookie that holds the client's last write (time and positions), sealed:
the client can neither read the primary's position in it nor change it.

A cookie of its own rather than a key of the Flask session: reading it costs nothing for
clients that have not written recently (the browser drops it when its window is over), it
does not make every read response ``Vary: Cookie``, and apps with server-side sessions do
not store a session for every write."""

_SALT = "flask-entitydb.last-write"
_PENDING = "_entitydb_last_write"


class LastWriteCookie:
    """Reads and writes the last-write cookie of one app: the base of its
    :class:`~flask_entitydb._engine.routing.Router` (a base class rather than an
    attribute, so the router's reads cost no extra call)."""

    def __init__(self, position_seconds: float) -> None:
        self.position_seconds = position_seconds
        """How long a write position is worth checking: the cookie's lifetime."""
        self.sealer: Sealer | None = None
        """Seals and opens the cookie (set by :meth:`sign_with`)."""
        # a client sends the same cookie on each request of its window: open it once
        self._decoded = functools.lru_cache(maxsize=1024)(self.decode)

    def sign_with(self, secret_key: str | bytes) -> None:
        """Seal and open the cookie with keys derived from ``secret_key`` (the app's
        ``SECRET_KEY``)."""
        self.sealer = Sealer(secret_key, _SALT)

    def last_write(self, current: Request | None = None) -> tuple[float, dict[str, str]] | None:
        """The client's last write, from the cookie of request ``current`` (default: the
        current request): its time and the primaries' positions by bind key (``""`` for
        the default bind); ``None`` when it has none, or a cookie that is not ours,
        damaged or forged."""
        value = (current or request).cookies.get(COOKIE_NAME)
        if value is None or self.sealer is None:
            return None
        return self._decoded(value)

    def decode(self, value: str) -> tuple[float, dict[str, str]] | None:
        """The time and positions of the cookie value ``value``; ``None`` when it is not
        ours, damaged or forged."""
        assert self.sealer is not None
        try:
            written, positions = self.sealer.open(value)
            return float(written), {str(k): str(v) for k, v in dict(positions).items()}
        except (Unsealable, TypeError, ValueError):
            return None

    def cookie_value(self, written: float, positions: dict[str, str]) -> str:
        """The sealed cookie value for a write at ``written`` (a Unix time)."""
        assert self.sealer is not None
        return self.sealer.seal([round(written, 3), positions])

    def note_write(self, key: str | None) -> None:
        """Count a commit on the primary of bind ``key`` in the current request as the
        client's write: the response sets the client's cookie, with the primaries'
        positions read after the view's last commit (:meth:`positions_after`)."""
        pending: set[str | None] | None = g.get(_PENDING)
        if pending is None:
            pending = set()
            setattr(g, _PENDING, pending)
            # a partial, not a bound method: Flask checks whether it is a coroutine
            # function, which costs a bound method one more call
            after_this_request(partial(_set_cookie, self))
        pending.add(key)

    def positions_after(self, written: set[str | None]) -> dict[str, str]:
        """The positions of the primaries of the binds ``written``, by bind key (``""``
        for the default bind); binds whose position cannot be read are left out."""
        return {}

    def merged(self, written: set[str | None]) -> tuple[float, dict[str, str]]:
        """The client's last write after this request's writes to the binds ``written``:
        now, the primaries' positions after them, and the positions of the other binds
        from the client's cookie."""
        positions = self.positions_after(written)
        previous = self.last_write()
        if previous is not None:
            names = {key or "" for key in written}
            positions = {**{k: v for k, v in previous[1].items() if k not in names}, **positions}
        return time.time(), positions


def _set_cookie(cookie: LastWriteCookie, response: Response) -> Response:
    # read after the view's commits have completed: the position covers all of them
    written, positions = cookie.merged(getattr(g, _PENDING))
    app = current_app
    interface = app.session_interface
    response.set_cookie(
        COOKIE_NAME,
        cookie.cookie_value(written, positions),
        # the browser forgets the write once no replica can still be behind it
        max_age=int(cookie.position_seconds) + 1,
        path=interface.get_cookie_path(app),
        domain=interface.get_cookie_domain(app),
        secure=interface.get_cookie_secure(app),
        httponly=True,
        samesite=interface.get_cookie_samesite(app),
    )
    return response
