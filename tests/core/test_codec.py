"""The payload format: header, checksum or HMAC, bound to its storage key, refused when wrong."""

from __future__ import annotations

import pickle

import pytest

from cascade_core import IntegrityError, SerializationError
from cascade_core._store.codec import MAGIC, Codec, key_id


def _explode():
    raise AssertionError("unpickled something it should have refused")


class Boom:
    def __reduce__(self):
        return (_explode, ())


def test_round_trip_and_header():
    codec = Codec()
    payload = codec.dumps("state/r/n", {"a": [1, None, b"x"]})
    assert payload[:2] == MAGIC and payload[2] == 1 and payload[3:5] == b"pc"
    assert codec.loads("state/r/n", payload) == {"a": [1, None, b"x"]}


def test_checksum_catches_corruption_truncation_and_swaps():
    codec = Codec()
    payload = codec.dumps("k1", 12345)
    flipped = payload[:-1] + bytes([payload[-1] ^ 1])
    for bad in (flipped, payload[:-3], payload[:6], b"", b"garbage bytes"):
        with pytest.raises(IntegrityError) as error:
            codec.loads("k1", bad)
        assert error.value.key == "k1"
    with pytest.raises(IntegrityError, match="copied from another key"):
        codec.loads("k2", payload)


def test_signed_payloads_are_verified_before_unpickling():
    codec = Codec(keys=[b"secret-one"])
    payload = codec.dumps("k", [1, 2])
    assert payload[4:5] == b"h" and key_id(b"secret-one") in payload[:20]
    assert codec.loads("k", payload) == [1, 2]
    evil_body = pickle.dumps(Boom())
    forged = payload[: len(payload) - len(pickle.dumps([1, 2], protocol=pickle.HIGHEST_PROTOCOL))] + evil_body
    with pytest.raises(IntegrityError, match="signature"):
        codec.loads("k", forged)
    with pytest.raises(IntegrityError, match="signature"):
        codec.loads("other", payload)
    unsigned = Codec().dumps("k", Boom.__name__)
    with pytest.raises(IntegrityError, match="unsigned"):
        codec.loads("k", unsigned)


def test_key_rotation_newest_signs_all_verify():
    old = Codec(keys=[b"old"]).dumps("k", "v")
    rotated = Codec(keys=[b"new", b"old"])
    assert rotated.loads("k", old) == "v"
    assert key_id(b"new") in rotated.dumps("k", "v")[:20]
    with pytest.raises(IntegrityError, match="does not have"):
        Codec(keys=[b"other"]).loads("k", old)
    with pytest.raises(IntegrityError, match="CASCADE_SECRET_KEY"):
        Codec().loads("k", old)


def test_json_serializer_and_unserializable_values():
    codec = Codec("json")
    assert codec.loads("k", codec.dumps("k", {"a": [1, 2.5, None]})) == {"a": [1, 2.5, None]}
    with pytest.raises(SerializationError, match="json"):
        codec.dumps("k", {1, 2})
    with pytest.raises(SerializationError, match="pickle"):
        Codec().dumps("k", lambda: 1)


def test_rebind_moves_a_verified_body_to_another_key():
    codec = Codec(keys=[b"s"])
    payload = codec.dumps("cache/x", "value")
    moved = codec.rebind("cache/x", "state/r/n", payload)
    assert codec.loads("state/r/n", moved) == "value"
    with pytest.raises(IntegrityError):
        codec.loads("cache/x", moved)


@pytest.mark.parametrize("keys", [None, [b"new-secret", b"old-secret"]], ids=["checksum", "signed"])
@pytest.mark.parametrize("serializer", ["pickle", "json"])
def test_batch_seal_and_open_agree_with_single_payloads(keys, serializer):
    codec = Codec(serializer, keys)
    values = {"a": 1, "b": [1, 2], "big": "x" * 70_000, "none": None}
    items = {name: (codec.code, codec.serialize(value)) for name, value in values.items()}
    sealed = codec.seal_many("state/run/", items)
    assert sealed == {name: codec.seal("state/run/" + name, code, body) for name, (code, body) in items.items()}
    opened, errors = codec.open_many("state/run/", sealed)
    assert errors == [] and opened == items
    # Bound to its key: the same payloads under another prefix all fail.
    opened, errors = codec.open_many("state/other/", sealed)
    assert opened == {} and len(errors) == len(values)


def test_batch_open_refuses_each_bad_payload_with_the_single_payload_message():
    codec = Codec()
    good = codec.dumps("cache/k1", 1)
    bad = {
        "flipped": codec.dumps("cache/flipped", 2)[:-1] + b"\x00",
        "short": good[:9],
        "foreign": b"not a cascade payload",
        "text": "a str, not bytes",
        "moved": good,  # valid under cache/k1 only
    }
    opened, errors = codec.open_many("cache/", {"k1": good, **bad})
    assert opened == {"k1": (b"p", pickle.dumps(1, protocol=pickle.HIGHEST_PROTOCOL))}
    assert sorted(error.key for error in errors) == sorted(f"cache/{name}" for name in bad)
    messages = {error.key: str(error) for error in errors}
    for name, payload in bad.items():
        with pytest.raises(IntegrityError) as single:
            codec.open(f"cache/{name}", payload)  # type: ignore[arg-type]
        assert messages[f"cache/{name}"] == str(single.value)
    # A signing codec refuses checksummed payloads in a batch too.
    opened, errors = Codec(keys=[b"secret"]).open_many("cache/", {"k1": good})
    assert opened == {} and "unsigned but signing is on" in str(errors[0])


def test_a_store_is_not_trusted_unless_the_codec_is_told(monkeypatch, caplog):
    # docs/backends.md: an absent trusted_store means False, so unsigned pickles warn once.
    from cascade_core._store import codec as codec_module

    payload = Codec().dumps("k", [1, 2])
    monkeypatch.setattr(codec_module, "_warned_unsigned", False)
    with caplog.at_level("WARNING", logger="cascade"):
        assert Codec(trusted_store=True).loads("k", payload) == [1, 2]
        assert not [r for r in caplog.records if "without signatures" in r.getMessage()]
        assert Codec().loads("k", payload) == [1, 2]
        assert Codec().loads("k", payload) == [1, 2]
    warned = [r for r in caplog.records if "without signatures" in r.getMessage()]
    assert len(warned) == 1 and "CASCADE_SECRET_KEY" in warned[0].getMessage()
