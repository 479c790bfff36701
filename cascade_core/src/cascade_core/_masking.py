"""Credentials out of text: URI userinfo, secret query options, and exceptions described safely.

Imports nothing from the package, so that ``_uri`` and ``_errors`` can both use it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"

# A query option whose name contains one of these is a secret: masked on output.
_SENSITIVE_WORDS = ("password", "passwd", "secret", "token", "key_password", "api_key", "apikey", "auth")

# In free text a URI ends at whitespace, a double quote or an angle bracket. A password holding
# one of those cannot be told apart from the text around it (percent-encode it).
_URI_IN_TEXT = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s\"<>]*)")
_OPTION_IN_TEXT = re.compile(r"(?P<key>[?&;][^=&#?;\s\"<>]+)=(?P<value>[^&#;\s\"<>]*)")


def is_sensitive(option: str) -> bool:
    """True when a query option's name marks it as a secret."""
    name = option.lower()
    return any(word in name for word in _SENSITIVE_WORDS)


def _mask_options(text: str) -> str:
    def option(match: re.Match[str]) -> str:
        return f"{match['key']}={MASK}" if is_sensitive(unquote(match["key"][1:])) else match[0]

    return _OPTION_IN_TEXT.sub(option, text)


def mask_uri_text(text: str) -> str:
    """One URI string that may not parse, with its whole userinfo and its secret options masked.

    The userinfo runs from ``://`` to the last ``@``, so a password holding ``/``, ``#``, ``?``
    or ``@`` is masked whole (at the price of masking more when a path or query holds an ``@``).
    """
    head, sep, rest = text.partition("://")
    if sep and "@" in rest:
        rest = MASK + rest[rest.rindex("@") :]
    return _mask_options(head + sep + rest)


def uri_text_secrets(text: str) -> set[str]:
    """The password and secret option values of one URI string, parsed or not, as written.

    The password is what lies between the first ``:`` after ``://`` and the last ``@``.
    """
    found: set[str] = set()
    _, sep, rest = text.partition("://")
    if sep and "@" in rest:
        _, colon, password = rest[: rest.rindex("@")].partition(":")
        if colon and password:
            found.add(password)
    found.update(
        m["value"] for m in _OPTION_IN_TEXT.finditer(text) if m["value"] and is_sensitive(unquote(m["key"][1:]))
    )
    return found


def mask_credentials(text: str) -> str:
    """Free text with the userinfo of every ``scheme://user:password@host`` and every secret
    query option (``?password=...``, ``&token=...``) replaced by ``***``."""
    if "://" in text:
        text = _URI_IN_TEXT.sub(_mask_match, text)
    if "=" in text:
        text = _mask_options(text)
    return text


def _mask_match(match: re.Match[str]) -> str:
    rest = match["rest"]
    at = rest.rfind("@")
    if at <= 0 or rest[:at] == MASK or rest[:at].endswith(":" + MASK):  # none, or masked already
        return match[0]
    return match["scheme"] + MASK + rest[at:]


def first_line(exc: BaseException) -> str:
    """The first line of ``str(exc)`` with credentials masked; never raises."""
    try:
        text = str(exc)
    except Exception:
        return f"<{type(exc).__name__} whose message could not be read>"
    lines = text.strip().splitlines()
    return mask_credentials(lines[0]) if lines else ""


def describe(exc: BaseException) -> str:
    """``TypeName: first line of the message``, credentials masked; never raises."""
    text = first_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
