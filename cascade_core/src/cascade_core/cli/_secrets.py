"""Secrets never reach the terminal: everything the CLI writes goes through a scrubber.

Backend URIs are masked where the CLI formats them (``str(BackendURI)``), but an error
raised by a driver, a log record or a traceback may quote a password verbatim. So ``main``
collects every secret the command line and the ``$CASCADE_STATE`` / ``$CASCADE_CACHE`` /
``$CASCADE_EXECUTOR`` variables carry, and wraps stdout and stderr in a stream that replaces them by ``***``,
and masks the credentials of any other URI written (a task's error quoting one, say).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote

from .._errors import InvalidURIError
from .._masking import mask_credentials, uri_text_secrets
from .._uri import MASK, BackendURI

URI_ENV = ("CASCADE_STATE", "CASCADE_CACHE", "CASCADE_EXECUTOR")


def uri_secrets(text: str) -> set[str]:
    """The secrets in one URI-like string, in the forms they may be printed in.

    A URI that does not parse (a password holding ``/``, ``#`` or ``?``) still gives its
    password: everything between the first ``:`` after ``://`` and the last ``@``.
    """
    found: set[str] = set()
    try:
        found.update(BackendURI.parse(text).secrets())
    except InvalidURIError:
        pass
    found |= uri_text_secrets(text)
    forms: set[str] = set()
    for secret in found:
        forms.update({secret, unquote(secret), quote(secret, safe=""), quote(secret)})
    return {form for form in forms if form}


def collect_secrets(argv: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    """Every secret in the arguments (``--state URI`` or ``--state=URI``) and URI variables.

    Longest first, so that a secret containing another one is masked whole.
    """
    found: set[str] = set()
    texts = [arg for arg in argv if "://" in arg]
    texts += [environ[name] for name in URI_ENV if environ.get(name)]
    for text in texts:
        found |= uri_secrets(text)
        head, eq, tail = text.partition("=")
        if eq and "://" not in head:
            found |= uri_secrets(tail)
    return sorted(found, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class ScrubbingStream:
    """A text stream that masks ``secrets``, and the userinfo and secret options of any URI, in
    whatever is written (see ``_masking.mask_credentials``), and is otherwise the stream.

    Callers write whole lines or whole documents at once (``print``, one ``json.dumps``), so a
    secret is never split across two writes.
    """

    def __init__(self, stream: Any, secrets: list[str]) -> None:
        self._stream = stream
        self._secrets = secrets

    def write(self, text: str) -> int:
        self._stream.write(mask_credentials(scrub(text, self._secrets)))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, flush, encoding, ...
        return getattr(self._stream, name)


@contextmanager
def scrubbed_output(secrets: list[str]) -> Iterator[None]:
    """Wrap ``sys.stdout`` and ``sys.stderr`` while the command runs."""
    import sys

    saved = sys.stdout, sys.stderr
    sys.stdout = ScrubbingStream(saved[0], secrets)  # type: ignore[assignment]
    sys.stderr = ScrubbingStream(saved[1], secrets)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
