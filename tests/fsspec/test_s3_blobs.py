"""cascade-fsspec against a real S3-compatible server (moto's server mode), through s3fs."""

from __future__ import annotations

import hashlib
import logging
import pickle

import pytest

import cascade_core as cs
from cascade_core._store import blob_refs


def test_run_stores_large_results_in_s3_by_reference(s3_bucket, tmp_path, caplog):
    import boto3

    calls = []

    @cs.task
    def make(n: int) -> bytes:
        calls.append("make")
        return b"q" * n

    @cs.task
    def size(data: bytes) -> int:
        return len(data)

    db = f"sqlite:///{tmp_path / 'c.db'}"
    uri = s3_bucket + "&threshold=64KiB"
    assert cs.run(size(make(300_000)), state_backend=db, blob_store=uri, run_id="r") == 300_000
    body = pickle.dumps(b"q" * 300_000, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(body).hexdigest()
    bucket = s3_bucket.split("/")[2]
    endpoint = s3_bucket.partition("endpoint_url=")[2]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    marker = "blobs/markers/state-" + hashlib.sha256(f"sqlite:///{tmp_path / 'c.db'}".encode()).hexdigest()[:32]
    assert keys == [marker, f"blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}"]  # the run's state recorded
    assert client.get_object(Bucket=bucket, Key=keys[1])["Body"].read() == body
    # Another run id, the same value: nothing written again.
    assert cs.run(size(make(300_000)), state_backend=db, blob_store=uri, run_id="r2") == 300_000
    assert [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]] == keys
    # Lost behind a stored result: the node runs again, with a warning.
    client.delete_object(Bucket=bucket, Key=keys[1])
    with caplog.at_level(logging.WARNING, logger="cascade"):

        @cs.task
        def head(data: bytes) -> bytes:
            return data[:2]

        assert cs.run(head(make(300_000)), state_backend=db, blob_store=uri, run_id="r") == b"qq"
    assert any("is lost" in r.getMessage() for r in caplog.records) and calls == ["make", "make", "make"]
    assert [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]] == keys  # written again


def test_blob_store_contract_on_s3(s3_bucket):
    store = blob_refs.resolve_blobs(s3_bucket).store  # type: ignore[union-attr]
    data = b"hello" * 100
    blob_id = "sha256:" + hashlib.sha256(data).hexdigest()
    assert store.put(blob_id, data) is True
    assert store.put(blob_id, b"else") is False
    assert store.get(blob_id) == data and store.exists(blob_id)
    assert [info.blob_id for info in store.list_blobs()] == [blob_id]
    assert store.delete(blob_id) is True and store.get(blob_id) is None and store.delete(blob_id) is False


def test_credentials_in_s3_uris_are_masked(s3_endpoint):
    with pytest.raises(cs.CascadeError) as info:
        cs.run(
            _noop(),
            blob_store=f"s3://AKIDEXAMPLE:hunter2secret@no-such-bucket/p?endpoint_url={s3_endpoint}&threshold=1K",
        )
    assert "hunter2secret" not in str(info.value)
    spec = blob_refs.resolve_blobs(f"s3://AKID:hunter2secret@bucket/p?endpoint_url={s3_endpoint}&token=tok123")
    assert spec is not None and "hunter2secret" not in spec.label and "tok123" not in spec.label
    assert "***" in spec.label and "hunter2secret" not in repr(spec.store)


def _noop():
    @cs.task
    def big() -> bytes:
        return b"x" * 5000

    return big()


def test_unreachable_s3_fails_the_task_naming_the_masked_uri(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    uri = f"s3://AKID:hunter2secret@bucket/p?endpoint_url=http://127.0.0.1:{port}&timeout=2&threshold=1K"
    with pytest.raises(cs.TaskFailed) as info:
        cs.run(_noop(), blob_store=uri, state_backend=f"sqlite:///{tmp_path / 'c.db'}")
    message = str(info.value)
    assert "blob store s3://AKID:***@bucket/p" in message and "hunter2secret" not in message


def test_missing_driver_names_the_fsspec_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if gcsfs were not installed
    hint = r'gs:// blob stores need gcsfs, which is not installed: pip install "cascade-fsspec\[gcs\]"'
    with pytest.raises(cs.BackendError, match=hint):
        blob_refs.resolve_blobs("gs://bucket/prefix")
