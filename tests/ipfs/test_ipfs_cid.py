"""CIDs computed and compared without a node, checked against what a js-ipfs node answered for the
same bytes (recorded from `add?cid-version=1&raw-leaves=true` and `pin/ls`)."""

from __future__ import annotations

import hashlib
import pickle

import pytest

from cascade_core.plugin import parse_uri
from cascade_ipfs import cid as cids
from cascade_ipfs.store import IpfsBlobStore

FOURTEEN = b"hello world 14"
BASE32 = "bafkreihuni5kvmflws37didm4cauqrwm4laxwuyt7duj5f6eshnavuwsdu"  # the node's add answer
BASE58 = "zb2rho6NcyhL644DW1P8XbdLC4jrYxXZgnJMiBhnkWT4wCRN4"  # the same CID as js-ipfs's pin/ls prints it
EMPTY_DIR_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"


def test_the_raw_cid_of_bytes_is_what_the_node_answered():
    assert cids.raw_cid(FOURTEEN) == BASE32
    assert cids.decode(BASE32) == bytes((1, 0x55, 0x12, 32)) + hashlib.sha256(FOURTEEN).digest()
    assert cids.raw_cid_of_digest(hashlib.sha256(FOURTEEN).digest()) == BASE32


def test_spellings_of_one_cid_compare_equal():
    assert cids.canonical(BASE58) == BASE32 == cids.canonical(BASE32.upper().replace("B", "b", 1))
    assert cids.canonical(EMPTY_DIR_V0) == EMPTY_DIR_V0  # CIDv0 stays base58btc
    assert cids.is_raw_sha256(BASE58) and not cids.is_raw_sha256(EMPTY_DIR_V0)


@pytest.mark.parametrize("text", ["", "xyz", "z0OIl", "Qm" + "0" * 44])
def test_what_is_not_a_cid_is_a_value_error(text):
    with pytest.raises(ValueError):
        cids.decode(text)


def test_a_store_pickles_without_its_connections():
    store = IpfsBlobStore.from_uri(parse_uri("ipfs://u:pw@127.0.0.1:5001/f?timeout=3"))
    store.rpc.client()  # a live httpx client, which does not pickle
    copy = pickle.loads(pickle.dumps(store))
    assert copy.options == store.options and copy.rpc._client is None
    store.close()
    store.close()
