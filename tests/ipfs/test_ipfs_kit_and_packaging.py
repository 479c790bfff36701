"""cascade-ipfs passes the conformance kit against a real IPFS node, builds its own wheel, and imports
nothing of cascade-core but its public plugin API (nor httpx until a store talks to its node)."""

from __future__ import annotations

import pytest
from cascade_test_plugin_dist import assert_imports_only_the_public_api, loaded_after, run_kit, wheel_parts


@pytest.mark.slow
def test_ipfs_blob_store_passes_the_kit(ipfs_uri, tmp_path):
    run_kit(ipfs_uri, tmp_path, "10 passed")  # refresh_after is a minute: the time-refresh test skips


def test_the_wheel_builds_on_its_own_with_its_entry_points(build_wheel, tmp_path):
    names, entries, meta = wheel_parts(build_wheel("cascade_ipfs", tmp_path))
    assert any(n.endswith("cascade_ipfs/py.typed") for n in names)
    for scheme in ("ipfs", "ipfs+https"):
        assert f"{scheme} = cascade_ipfs.provider:provider [blobs]" in entries
    assert "Requires-Dist: cascade-core" in meta and "Requires-Dist: httpx>=0.27" in meta


def test_it_imports_only_the_public_plugin_api():
    assert_imports_only_the_public_api("cascade_ipfs")


def test_opening_a_store_imports_no_http_client():
    code = (
        "from cascade_core._plugins.registry import registry\n"
        "from cascade_core.plugin import parse_uri\n"
        "registry.blob_store(parse_uri('ipfs://127.0.0.1:1'))"
    )
    assert loaded_after(code, ("httpx", "httpcore")) == []
