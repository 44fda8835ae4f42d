"""The sealed last-write cookie: a client can neither read the primary's position in it
nor change it, and nothing is kept on the server."""

from __future__ import annotations

import base64
import json

import pytest

from flask_entitydb._engine.cookie import LastWriteCookie
from flask_entitydb._engine.sealing import Sealer, Unsealable

POSITIONS = {"": "0-1-29", "analytics": "0/3000148"}


def _layers(sealed: str) -> list[bytes]:
    """Everything a client can decode from ``sealed`` without the key: the token and its
    base64 decoding (Fernet: version, timestamp, IV, ciphertext, HMAC)."""
    return [sealed.encode(), base64.urlsafe_b64decode(sealed)]


def test_a_sealed_value_opens_with_the_same_secret_only() -> None:
    sealer = Sealer("secret", "label")
    sealed = sealer.seal([1.5, POSITIONS])
    assert Sealer("secret", "label").open(sealed) == [1.5, POSITIONS]
    with pytest.raises(Unsealable):
        Sealer("another secret", "label").open(sealed)
    with pytest.raises(Unsealable):
        Sealer("secret", "another label").open(sealed)


def test_the_positions_cannot_be_read_from_the_cookie() -> None:
    sealer = Sealer("secret", "label")
    sealed = sealer.seal([1.5, POSITIONS])
    for layer in _layers(sealed):
        for position in POSITIONS.values():
            assert position.encode() not in layer
        assert b"0-1-" not in layer
    # a random nonce: the same write seals differently each time
    assert sealer.seal([1.5, POSITIONS]) != sealed


@pytest.mark.parametrize("damage", ["flip", "truncate", "unsigned"])
def test_a_damaged_or_forged_cookie_is_ignored(damage: str) -> None:
    cookie = LastWriteCookie(position_seconds=2)
    cookie.sign_with("secret")
    value = cookie.cookie_value(1.5, POSITIONS)
    assert cookie.decode(value) == (1.5, POSITIONS)
    if damage == "flip":
        forged = value[:5] + ("A" if value[5] != "A" else "B") + value[6:]
    elif damage == "truncate":
        forged = value[:-3]
    else:  # the client's own encoding of a position of its choice
        forged = base64.urlsafe_b64encode(json.dumps([9e9, {"": "0-1-1"}]).encode()).decode()
    assert cookie.decode(forged) is None
