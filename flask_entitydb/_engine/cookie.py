"""The client's last write, in a signed cookie of its own: read on each replica read,
written after a commit on a primary inside a request."""

from __future__ import annotations

import functools
import time
from functools import partial

from flask import after_this_request, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.wrappers import Request, Response

COOKIE_NAME = "entitydb_write"
"""Name of the cookie that holds the client's last write (time and positions), signed.

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
        self.signer: URLSafeSerializer | None = None
        """Signs and checks the cookie (set by :meth:`sign_with`)."""
        # a client sends the same cookie on each request of its window: check it once
        self._decoded = functools.lru_cache(maxsize=1024)(self._decode)

    def sign_with(self, secret_key: str | bytes) -> None:
        """Sign and check the cookie with ``secret_key`` (the app's ``SECRET_KEY``)."""
        self.signer = URLSafeSerializer(secret_key, salt=_SALT)

    def last_write(self, current: Request | None = None) -> tuple[float, dict[str, str]] | None:
        """The client's last write, from the cookie of request ``current`` (default: the
        current request): its time and the primaries' positions by bind key (``""`` for
        the default bind); ``None`` when it has none, or a cookie that is not ours,
        damaged or forged."""
        value = (current or request).cookies.get(COOKIE_NAME)
        if value is None or self.signer is None:
            return None
        return self._decoded(value)

    def _decode(self, value: str) -> tuple[float, dict[str, str]] | None:
        assert self.signer is not None
        try:
            written, positions = self.signer.loads(value)
            return float(written), {str(k): str(v) for k, v in dict(positions).items()}
        except (BadSignature, TypeError, ValueError):
            return None

    def cookie_value(self, written: float, positions: dict[str, str]) -> str:
        """The signed cookie value for a write at ``written`` (a Unix time)."""
        assert self.signer is not None
        return str(self.signer.dumps([round(written, 3), positions]))

    def record_write(self, positions: dict[str, str], written: set[str | None]) -> None:
        """Keep the time of the client's write to the binds ``written`` and the primaries'
        ``positions`` after it in the client's cookie, set on the response of the current
        request."""
        pending: tuple[float, dict[str, str]] | None = g.get(_PENDING)
        previous = pending if pending is not None else self.last_write()
        if previous is not None:
            # keep the positions of the binds this request did not write to
            names = {key or "" for key in written}
            positions = {**{k: v for k, v in previous[1].items() if k not in names}, **positions}
        setattr(g, _PENDING, (time.time(), positions))
        if pending is None:
            # a partial, not a bound method: Flask checks whether it is a coroutine
            # function, which costs a bound method one more call
            after_this_request(partial(_set_cookie, self))


def _set_cookie(cookie: LastWriteCookie, response: Response) -> Response:
    written, positions = getattr(g, _PENDING)
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
