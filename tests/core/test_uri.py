"""The one URI parser: fields, percent-decoding, typed options naming the bad key, masked secrets."""

from __future__ import annotations

import pytest

from cascade_core import BackendURI, InvalidURIError
from cascade_core._uri import mask_text, non_negative_int, positive_float


def test_fields_and_percent_decoding():
    uri = BackendURI.parse("redis://us%40er:p%40ss%3Aw@cache.local:6380/2?prefix=x&ttl=60")
    assert (uri.scheme, uri.username, uri.password, uri.host, uri.port) == (
        "redis",
        "us@er",
        "p@ss:w",
        "cache.local",
        6380,
    )
    assert uri.database == "2" and uri.options == {"prefix": "x", "ttl": "60"}
    assert BackendURI.parse(uri.render(mask=False)) == uri


def test_scheme_is_case_insensitive_and_driver_forms_are_allowed():
    assert BackendURI.parse("REDIS+Unix:///tmp/r.sock").scheme == "redis+unix"
    assert BackendURI.parse("sqlite:////abs/file.db").path == "//abs/file.db"
    assert BackendURI.parse("memory://").host is None


def test_unescaped_at_in_password_still_parses():
    uri = BackendURI.parse("redis://:p@ss@host:1/0")
    assert uri.password == "p@ss" and uri.host == "host"


def test_non_ascii_password_round_trips():
    uri = BackendURI.parse("redis://:%C3%A9t%C3%A9@host")
    assert uri.password == "été"
    assert BackendURI.parse(uri.render(mask=False)).password == "été"


def test_ipv6_hosts():
    uri = BackendURI.parse("redis://[::1]:6379/0")
    assert uri.host == "::1" and uri.port == 6379 and "[::1]" in str(uri)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("localhost:6379", "expected 'scheme://"),
        ("1redis://x", "invalid scheme"),
        ("red is://x", "invalid scheme"),
        ("redis://host:99999/0", "invalid port"),
        ("redis://host:abc/0", "invalid port"),
        ("redis://host/0?ttl", "use key=value"),
        ("redis://a:b:c", "IPv6"),
    ],
)
def test_malformed_uris(text, words):
    with pytest.raises(InvalidURIError) as error:
        BackendURI.parse(text)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_password_and_secret_options_are_masked_everywhere():
    uri = BackendURI.parse("redis://user:hunter2@h:1/0?token=abc123&prefix=p")
    for shown in (str(uri), repr(uri), f"{uri}", uri.render()):
        assert "hunter2" not in shown and "abc123" not in shown
        assert "***" in shown and "prefix=p" in shown
    assert "hunter2" in uri.render(mask=False)
    assert mask_text("failed: hunter2 and abc123", uri) == "failed: *** and ***"


def test_a_malformed_uri_error_masks_the_password():
    with pytest.raises(InvalidURIError) as error:
        BackendURI.parse("redis://user:hunter2@host:badport/0")
    assert "hunter2" not in str(error.value)


def test_typed_options_name_the_bad_key():
    uri = BackendURI.parse("x://h?ttl=-5")
    with pytest.raises(InvalidURIError) as error:
        uri.parse_options({"ttl": positive_float})
    assert error.value.key == "ttl" and "'ttl'" in str(error.value)
    with pytest.raises(InvalidURIError) as error:
        BackendURI.parse("x://h?tll=5").parse_options({"ttl": positive_float, "db": non_negative_int})
    assert error.value.key == "tll" and "known options: db, ttl" in str(error.value)
    assert BackendURI.parse("x://h?ttl=2.5").parse_options({"ttl": positive_float}) == {"ttl": 2.5}
    with pytest.raises(InvalidURIError):
        BackendURI.parse("x://h?ttl=abc").parse_options({"ttl": positive_float})
    with pytest.raises(InvalidURIError):
        BackendURI.parse("x://h?ttl=nan").parse_options({"ttl": positive_float})


def test_non_string_uri():
    with pytest.raises(InvalidURIError):
        BackendURI.parse(42)  # type: ignore[arg-type]


def test_uri_is_immutable_and_hashable():
    uri = BackendURI.parse("memory://a")
    with pytest.raises(AttributeError):
        uri.host = "b"  # type: ignore[misc]
    assert {uri: 1}[BackendURI.parse("memory://a")] == 1
