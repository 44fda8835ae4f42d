"""Sealed values: encrypted and signed with keys derived from the app's ``SECRET_KEY``,
so that a client can neither read nor change them, with nothing kept on the server.

The last-write cookie (:mod:`flask_entitydb._engine.cookie`) holds the primary's
replication position, which is the primary's transaction counter: no client should read
it. A value is encoded as JSON, encrypted with a keystream of HMAC-SHA256 blocks over a
random 16-byte nonce and a counter (HMAC as a pseudo-random function in counter mode),
then the nonce and ciphertext are signed with itsdangerous (encrypt-then-MAC). Both keys
are derived from ``SECRET_KEY`` with distinct labels. Only the standard library's
:mod:`hmac` and :mod:`hashlib` and itsdangerous, which Flask already depends on, are used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

_NONCE_BYTES = 16
_BLOCK = hashlib.sha256().digest_size


class Unsealable(ValueError):
    """A sealed value that is damaged, forged or sealed with another key."""


class Sealer:
    """Seals and opens JSON values with keys derived from ``secret_key``."""

    def __init__(self, secret_key: str | bytes, label: str) -> None:
        secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
        self._key = hmac.new(secret, f"{label}.encrypt".encode(), hashlib.sha256).digest()
        self._signer = URLSafeSerializer(secret_key, salt=f"{label}.sign")

    def _keystream(self, nonce: bytes, length: int) -> bytes:
        blocks = (
            hmac.new(self._key, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest()
            for counter in range(-(-length // _BLOCK))
        )
        return b"".join(blocks)[:length]

    def seal(self, value: Any) -> str:
        """``value`` (JSON-serializable), encrypted and signed: a URL-safe string."""
        plain = json.dumps(value, separators=(",", ":")).encode()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        cipher = bytes(
            a ^ b for a, b in zip(plain, self._keystream(nonce, len(plain)), strict=True)
        )
        return str(self._signer.dumps(base64.urlsafe_b64encode(nonce + cipher).decode()))

    def open(self, sealed: str) -> Any:
        """The value of ``sealed``.

        :raises Unsealable: it is damaged, forged, or sealed with another key.
        """
        try:
            raw = base64.urlsafe_b64decode(str(self._signer.loads(sealed)))
            nonce, cipher = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            plain = bytes(
                a ^ b for a, b in zip(cipher, self._keystream(nonce, len(cipher)), strict=True)
            )
            return json.loads(plain)
        except (BadSignature, TypeError, ValueError) as error:
            raise Unsealable(str(error)) from None
