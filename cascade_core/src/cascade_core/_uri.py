"""Backend URIs: one parser, an immutable value, typed query options, masked secrets."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from ._errors import DefinitionError, InvalidURIError
from ._masking import MASK, is_sensitive, mask_uri_text, uri_text_secrets

# RFC 3986 scheme chars, lowercased; `+` gives `scheme+driver` forms such as `redis+unix`.
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.\-]*$")
_URI_RE = re.compile(r"^(?P<scheme>[^:/?#]+)://(?P<rest>.*)$", re.DOTALL)


def normalize_scheme(scheme: str) -> str:
    """Lowercase and validate a scheme name; raise InvalidURIError when it is malformed."""
    lowered = scheme.strip().lower()
    if not _SCHEME_RE.match(lowered):
        raise InvalidURIError(
            f"invalid scheme {scheme!r}: use letters, digits, '+', '-' or '.', starting with a letter"
        )
    return lowered


@dataclass(frozen=True, repr=False)
class BackendURI:
    """A parsed backend URI such as ``redis://:secret@host:6379/0?prefix=x``.

    ``str()`` and ``repr()`` mask the password and secret query values as ``***``;
    ``render(mask=False)`` gives the usable string back.
    """

    scheme: str
    username: str | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    path: str = ""
    query: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    more_hosts: tuple[tuple[str | None, int | None], ...] = ()  # after the first, in a list h1:1,h2:2

    @classmethod
    def parse(cls, text: str) -> BackendURI:
        """Parse ``scheme://[user[:password]@]host[:port][/path][?k=v&...]``."""
        if not isinstance(text, str):
            raise InvalidURIError(f"a backend URI must be a string, got {type(text).__name__}")
        match = _URI_RE.match(text.strip())
        if not match:
            raise InvalidURIError(
                f"malformed backend URI {mask_uri_text(text)!r}: expected 'scheme://...', "
                "for example 'sqlite:///cascade.db' or 'redis://localhost:6379/0'"
            )
        scheme = normalize_scheme(match["scheme"])
        rest = match["rest"]
        if "#" in rest:
            # A fragment means nothing to a backend; dropping it would cut a password or a path short.
            raise _malformed(text, "a '#'", "a backend URI has no fragment" + ("" if "@" in text else ": write %23"))
        rest, _, query_text = rest.partition("?")
        netloc, slash, path = rest.partition("/")
        path = slash + path if slash else ""
        username = password = None
        if "@" in netloc:
            # The last '@' separates credentials, so an unescaped '@' in a password still parses.
            userinfo, _, netloc = netloc.rpartition("@")
            user_text, colon, password_text = userinfo.partition(":")
            username = unquote(user_text) or None
            password = unquote(password_text) if colon else None
        # Several hosts (a Redis Cluster's seeds, Sentinels) are a comma-separated list.
        listed = [_split_host_port(part, text) for part in netloc.split(",")] if "," in netloc else []
        if any(host is None for host, _ in listed):
            raise _malformed(text, "an empty host in a host list", "write host:port,host:port", key="host")
        host, port = listed[0] if listed else _split_host_port(netloc, text)
        query = _parse_query(query_text, text)
        return cls(scheme, username, password, host, port, unquote(path), query, tuple(listed[1:]))

    @property
    def hosts(self) -> tuple[tuple[str | None, int | None], ...]:
        """Every ``(host, port)`` the URI names, in order: one, or several for ``h1:7000,h2:7001``."""
        return ((self.host, self.port), *self.more_hosts)

    # -- views ---------------------------------------------------------------

    @property
    def options(self) -> dict[str, str]:
        """The query options as a dict (the last value wins for a repeated key)."""
        return dict(self.query)

    @property
    def database(self) -> str:
        """The path without its leading slash (a db number, a file name, ...)."""
        return self.path[1:] if self.path.startswith("/") else self.path

    def render(self, *, mask: bool = True) -> str:
        """The URI as a string; with ``mask=False`` secrets are included."""
        text = f"{self.scheme}://"
        if self.username is not None or self.password is not None:
            if self.username:
                text += quote(self.username, safe="")
            if self.password is not None:
                text += ":" + (MASK if mask else quote(self.password, safe=""))
            text += "@"
        text += ",".join(_host_port(host, port) for host, port in self.hosts)
        text += quote(self.path, safe="/:~.-_")
        if self.query:
            parts = []
            for key, value in self.query:
                shown = MASK if mask and is_sensitive(key) else quote(value, safe="/:.-_,")
                parts.append(f"{quote(key, safe='_.-')}={shown}")
            text += "?" + "&".join(parts)
        return text

    def __str__(self) -> str:
        return self.render(mask=True)

    def __repr__(self) -> str:
        return f"BackendURI({self.render(mask=True)!r})"

    def secrets(self) -> list[str]:
        """Every secret this URI carries (for scrubbing text that may contain them)."""
        found = [self.password] if self.password else []
        found += [value for key, value in self.query if is_sensitive(key) and value]
        return found

    def replace(self, **changes: Any) -> BackendURI:
        """A copy with some fields changed."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update(changes)
        return BackendURI(**values)

    def parse_options(
        self, table: Mapping[str, Callable[[str], Any]], *, defaults: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Convert the query options through ``table`` (name -> converter).

        An unknown option or a value that does not convert raises InvalidURIError naming the key.
        """
        result: dict[str, Any] = dict(defaults or {})
        for key, raw in self.query:
            converter = table.get(key)
            if converter is None:
                known = ", ".join(sorted(table)) or "none"
                raise InvalidURIError(
                    f"unknown option {key!r} in {self.scheme}:// URI {self}; known options: {known}",
                    key=key,
                )
            try:
                result[key] = converter(raw)
            except (TypeError, ValueError) as exc:
                shown = MASK if is_sensitive(key) else repr(raw)
                reason = str(exc) or "invalid value"
                raise InvalidURIError(
                    f"invalid value {shown} for option {key!r} in {self}: {reason}", key=key
                ) from None
        return result


# -- option converters (for parse_options tables) -----------------------------


MAX_SECONDS = 10 * 365 * 24 * 3600  # the longest TTL anywhere: 10 years (redis caps expiry times too)
# Limit and resource names (docs/concepts.md, "Limits"): what a CLI argument, a Redis key and a
# sqlite row all take as they are.
LIMIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
MAX_TIMEOUT = 24 * 3600  # the longest timeout: a day (sqlite's busy timeout wraps around past 24 days)
MAX_WHOLE = 2**63 - 1  # what SQLite and redis store as an integer


def positive_float(raw: str) -> float:
    """A number of seconds greater than 0 and at most 10 years (``MAX_SECONDS``); NaN and infinity refused."""
    value = float(raw)
    if not 0 < value <= MAX_SECONDS:  # False for NaN too
        raise ValueError(f"expected a number greater than 0 and at most {MAX_SECONDS} (10 years)")
    return value


def checked_ttl(ttl: Any) -> float:
    """A cache entry's TTL as given to ``set_many``: at most ``MAX_SECONDS`` (0 or less: expired on arrival).

    Raises DefinitionError for NaN, infinity or anything that is not a number.
    """
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not -math.inf < ttl <= MAX_SECONDS:
        raise DefinitionError(f"a cache TTL must be a number of seconds, at most {MAX_SECONDS} (10 years), got {ttl!r}")
    return float(max(ttl, -1))  # every ttl <= 0 means the same; a huge negative int has no float


def timeout_seconds(raw: str) -> float:
    """A timeout: a number of seconds greater than 0 and at most a day (``MAX_TIMEOUT``)."""
    value = float(raw)
    if not 0 < value <= MAX_TIMEOUT:
        raise ValueError(f"expected a number of seconds greater than 0 and at most {MAX_TIMEOUT} (a day)")
    return value


def non_negative_int(raw: str) -> int:
    """A whole number from 0 to ``MAX_WHOLE``."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_WHOLE:
        raise ValueError(f"expected a whole number from 0 to {MAX_WHOLE}")
    return int(text)


def positive_int(raw: str) -> int:
    """A whole number from 1 to ``MAX_WHOLE``."""
    value = non_negative_int(raw)
    if value == 0:
        raise ValueError("expected a whole number greater than 0")
    return value


def at_most(converter: Callable[[str], Any], maximum: float, unit: str = "") -> Callable[[str], Any]:
    """``converter``, refusing values over ``maximum`` (``unit`` is shown after it)."""

    def convert(raw: str) -> Any:
        value = converter(raw)
        if value > maximum:
            raise ValueError(f"expected at most {maximum}{unit}")
        return value

    return convert


def boolean(raw: str) -> bool:
    """true/false, yes/no, on/off, 1/0."""
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def choice(*allowed: str) -> Callable[[str], str]:
    """One of the given words."""

    def convert(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return raw

    return convert


def size_bytes(raw: str) -> int:
    """A byte count, optionally with a K, M or G suffix (powers of 1024)."""
    text = raw.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    if text and text[-1] in "KMG":
        factor = 1024 ** ("KMG".index(text[-1]) + 1)
        text = text[:-1]
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or not 0 < int(text) * factor <= MAX_WHOLE:
        raise ValueError("expected a size such as 1048576, 512K, 256M or 1G")
    return int(text) * factor


# -- helpers ------------------------------------------------------------------


def _malformed(original: str, problem: str, advice: str, key: str | None = None) -> InvalidURIError:
    """The error for a URI that does not parse, quoting only its masked text.

    A piece of the raw text (a port, an option) may be part of a password holding ``/``,
    ``#`` or ``?``: ``problem`` quotes one only through :func:`_quoted`.
    """
    if "@" in original:
        advice += "; percent-encode '/', '#', '?' and '@' in a password (%2F, %23, %3F, %40)"
    return InvalidURIError(f"{problem} in backend URI {mask_uri_text(original)!r}: {advice}", key=key)


def _quoted(piece: str, original: str) -> str:
    """`` 'piece'`` when the masked URI shows it anyway, else nothing."""
    return f" {piece!r}" if piece and piece in mask_uri_text(original) else ""


def _host_port(host: str | None, port: int | None) -> str:
    text = (f"[{host}]" if ":" in host else host) if host else ""
    return text + (f":{port}" if port is not None else "")


def _split_host_port(netloc: str, original: str) -> tuple[str | None, int | None]:
    if not netloc:
        return None, None
    if netloc.startswith("["):
        host, _, after = netloc[1:].partition("]")
        port_text = after[1:] if after.startswith(":") else ""
        if after and not after.startswith(":"):
            raise _malformed(original, "malformed host", "write an IPv6 host as [::1]:6379", key="host")
    else:
        host, _, port_text = netloc.partition(":")
        if ":" in port_text:
            raise _malformed(original, "malformed host", "put an IPv6 address in brackets", key="host")
    port = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _malformed(
                original, f"invalid port{_quoted(port_text, original)}", "use a number from 1 to 65535", key="port"
            )
        port = int(port_text)
    return unquote(host) or None, port


def _parse_query(text: str, original: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = unquote(key)
        if not key or not eq:
            shown = _quoted(key or part, original)
            raise _malformed(
                original, f"malformed query option{shown}", "use key=value", key=(key or None) if shown else None
            )
        pairs.append((key, unquote(value)))
    return tuple(pairs)


def mask_text(text: str, uri: BackendURI | str | None) -> str:
    """Replace every secret of ``uri`` found in ``text`` by ``***``."""
    if uri is None:
        return text
    if isinstance(uri, str):
        try:
            secrets = BackendURI.parse(uri).secrets()
        except InvalidURIError:
            secrets = []
        secrets += uri_text_secrets(uri)
    else:
        secrets = uri.secrets()
    for secret in sorted(secrets, key=len, reverse=True):  # a secret holding another is masked whole
        for form in {secret, unquote(secret), quote(secret, safe=""), quote(secret)}:
            if form:
                text = text.replace(form, MASK)
    return text
