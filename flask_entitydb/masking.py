"""Hiding passwords in everything flask-entitydb prints, logs or raises.

Every message, log line and ``repr`` that shows a connection string goes through
:func:`mask_url` (a URL) or :func:`mask_text` (free text that may contain one).
"""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# greedy: a password with an unencoded '@' is hidden up to the last '@' (over-masking is safe)
_PASSWORD_IN_TEXT = re.compile(r"(?P<head>://[^:/@?#]*:)(?P<password>.*)@", re.DOTALL)


def mask_text(text: str) -> str:
    """Hide the password of anything in ``text`` that looks like ``scheme://user:pw@host``.

    Used for strings that did not parse as a URL, so they cannot be masked by SQLAlchemy.
    """
    return _PASSWORD_IN_TEXT.sub(r"\g<head>***@", text)


def mask_unparsed(text: str) -> str:
    """Mask a string that is not a URL: without a ``scheme://user:`` to anchor on, hide
    everything before its last ``@`` (where credentials would end)."""
    masked, count = _PASSWORD_IN_TEXT.subn(r"\g<head>***@", text)
    if count == 0 and "@" in text:
        masked = "***" + text[text.rindex("@") :]
    return masked


def mask_url(url: URL | str) -> str:
    """Return ``url`` as a string with its password replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return mask_text(url)
