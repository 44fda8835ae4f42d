"""Hiding passwords in everything flask-entitydb prints, logs or raises.

:func:`mask` is the one function every message, log line and ``repr`` that may show a
connection string goes through. It hides:

- the password of the user-info (``scheme://user:***@host``), and all of the user-info
  when it is ambiguous (an unencoded ``@`` in it): ``scheme://***@host``;
- the value of every query parameter whose name says it is a secret (``password``,
  ``passwd``, ``pwd``, ``sslpassword``, ``secret``, ``token``...);
- anything after a ``#`` (connection strings have no fragment; a ``#`` there is part of
  a password typed unencoded).

:func:`mask_connection_string` is its variant for a connection string whose user-info is
ambiguous: everything before its last ``@`` is hidden. A value that does not parse at all
is never shown: :func:`describe_unparsed` names its length and at most its scheme.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import URL

__all__ = [
    "describe_unparsed",
    "has_fragment",
    "is_secret_key",
    "mask",
    "mask_connection_string",
    "mask_text",
    "mask_url",
]

_SECRET_KEY = re.compile(r"pass|pwd|secret|token|credential|auth", re.IGNORECASE)

# scheme://user-info@ : the user-info runs (greedily) to the last '@' before a space or quote,
# so a password with an unencoded '@' is hidden whole (over-masking is safe)
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s'\"]*)@(?=[^\s'\"@]*(?:[\s'\"]|$))"
)
# name=value where the name says it is a secret, in a query string or free text
_SECRET_PARAM = re.compile(
    r"(?P<name>[A-Za-z0-9_]*(?:pass|pwd|secret|token|credential|auth)[A-Za-z0-9_]*)"
    r"(?P<eq>\s*=\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,)'\"]*)",
    re.IGNORECASE,
)
# a '#' in something URL-like: the rest of the token is hidden
_FRAGMENT = re.compile(r"(?P<head>://[^\s'\"#]*)#[^\s'\"]*")


def is_secret_key(name: str) -> bool:
    """Whether a query parameter or connect argument called ``name`` holds a secret."""
    return bool(_SECRET_KEY.search(name))


def _userinfo(match: re.Match[str]) -> str:
    userinfo = match.group("userinfo")
    user, colon, password = userinfo.partition(":")
    if "@" in userinfo or "/" in user or "?" in user:
        # ambiguous: no part of it is shown
        return f"{match.group('scheme')}***@"
    if not colon or not password:
        return match.group(0)  # no password (or an empty one): nothing to hide
    return f"{match.group('scheme')}{user}:***@"


def _text(text: str) -> str:
    text = _FRAGMENT.sub(r"\g<head>#***", text)
    text = _USERINFO.sub(_userinfo, text)
    return _SECRET_PARAM.sub(r"\g<name>\g<eq>***", text)


def _hidden(key: str, value: str) -> str:
    return "***" if is_secret_key(key) else value.split("#")[0]


def _url(url: URL) -> str:
    fragment = has_fragment(url)
    if url.database and "#" in url.database:
        url = url.set(database=url.database.split("#")[0])
    if url.query:
        url = url.set(
            query={
                key: _hidden(key, value)
                if isinstance(value, str)
                else tuple(_hidden(key, v) for v in value)
                for key, value in url.query.items()
            }
        )
    # an empty password hides nothing: shown as typed ('root:@host'), not as 'root:***'
    text = url.render_as_string(hide_password=url.password != "")
    return _text(text) + ("#***" if fragment else "")


def has_fragment(url: URL) -> bool:
    """Whether a ``#`` (a fragment typed into the URL) ended up in its database or query."""
    values = [v for value in url.query.values() for v in _values(value)]
    return "#" in (url.database or "") or any("#" in v for v in values)


def _values(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def mask(value: URL | str | object) -> str:
    """Return ``value`` (a URL, or any text that may contain connection strings) as text
    with every password and secret in it replaced by ``***``."""
    if isinstance(value, URL):
        return _url(value)
    return _text(str(value))


def mask_connection_string(raw: str) -> str:
    """Mask a configured connection string that did not parse as a URL.

    Without a ``scheme://`` to anchor on, everything before its last ``@`` (where
    credentials would end) is hidden; query secrets and fragments are hidden as by
    :func:`mask`.
    """
    if "@" in raw:
        start = raw.find("://")
        head = raw[: start + 3] if start != -1 and start < raw.rindex("@") else ""
        raw = head + "***" + raw[raw.rindex("@") :]
    return mask(raw)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_SCHEME_TYPO = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\+[A-Za-z0-9]*[:/]{1,3}")


def describe_unparsed(raw: str) -> str:
    """Describe a configured value that did not parse as a URL without showing any of it
    that could be a secret: its length and, at most, its ``scheme://``.

    >>> describe_unparsed("not a url s3cr3tPW")
    "a value of 18 characters that does not start with a scheme such as 'mysql+mysqldb://'"
    """
    size = f"a value of {len(raw)} character{'s' if len(raw) != 1 else ''}"
    if raw[:1] in {"'", '"'}:
        return f"{size} starting with a quote"
    scheme = _SCHEME.match(raw)
    typo = _SCHEME_TYPO.match(raw)
    if scheme is None and typo is not None:
        # only scheme characters, ':' and '/': never a credential
        return f"{size} starting '{typo.group(0)}' (a scheme ends with '://')"
    if scheme is None:
        return f"{size} that does not start with a scheme such as 'mysql+mysqldb://'"
    return f"{size} starting '{scheme.group(0)}'"


# the names earlier versions used: all are :func:`mask` (and its unparsed variant)
mask_url = mask
mask_text = mask
mask_unparsed = mask_connection_string
