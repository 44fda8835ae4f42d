"""Sealed values: encrypted and authenticated with a key derived from the app's
``SECRET_KEY``, so that a client can neither read nor change them, with nothing kept on
the server.

The last-write cookie (:mod:`flask_entitydb._engine.cookie`) holds the primary's
replication position, which is the primary's transaction counter: no client should read
it. A value is encoded as JSON and sealed with Fernet from the ``cryptography`` package
(AES-128-CBC with a random IV, then HMAC-SHA256 over it). Fernet's key is derived from
``SECRET_KEY`` and a label with HMAC-SHA256, so each use of a sealer has its own key.
``cryptography`` is imported only when an app with read replicas makes its first sealer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


class Unsealable(ValueError):
    """A sealed value that is damaged, forged or sealed with another key."""


class Sealer:
    """Seals and opens JSON values with a key derived from ``secret_key`` and ``label``."""

    def __init__(self, secret_key: str | bytes, label: str) -> None:
        from cryptography.fernet import Fernet

        secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
        key = hmac.new(secret, f"flask-entitydb.{label}".encode(), hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, value: Any) -> str:
        """``value`` (JSON-serializable), encrypted and authenticated: a URL-safe string."""
        plain = json.dumps(value, separators=(",", ":")).encode()
        return self._fernet.encrypt(plain).decode("ascii")

    def open(self, sealed: str) -> Any:
        """The value of ``sealed``.

        :raises Unsealable: it is damaged, forged, or sealed with another key.
        """
        from cryptography.fernet import InvalidToken

        try:
            return json.loads(self._fernet.decrypt(sealed.encode("ascii")))
        except (InvalidToken, UnicodeError, TypeError, ValueError) as error:
            raise Unsealable(str(error) or "not a sealed value") from None
