"""Task records (cascade_core/_run/records.py) are JSON whatever the task names, errors and
reasons hold: every stored record parses, and gives back the strings exactly."""

from __future__ import annotations

import json

import cascade_core as cs

ODD = 'quote " backslash \\ tab \t nul \x00 bell \x07 é ☃ 𝄞 </script>'  # errors are stored as one line


def test_every_record_parses_with_odd_task_names_and_errors(tmp_path):
    @cs.task(name=f"odd\n{ODD}", retries=1)
    def odd(x: int) -> int:
        if x == 1:
            raise ValueError(ODD)
        return x

    @cs.task(name="after-odd")
    def after(y: int) -> int:
        return y

    state = f"sqlite:///{tmp_path / 'r.db'}"
    report = cs.Engine(state).execute([odd(0), after(odd(1))], run_id="odd")
    assert report.status == "failed"
    from cascade_core._plugins.resolve import resolve_state

    spec = resolve_state(state)
    backend = spec.open("odd")
    try:
        raw = backend.get_task_records()
    finally:
        backend.close()
        spec.close()
    records = {node: json.loads(text) for node, text in raw.items()}  # raises on a broken record
    by_status = {record["status"]: record for record in records.values()}
    assert {record["task"] for record in records.values()} == {f"odd\n{ODD}", "after-odd"}
    failed = by_status["failed"]
    assert ODD in failed["error"] and failed["attempts"] == 2
    assert ODD in failed["failed_attempts"][0]["error"]
    assert by_status["skipped"]["reason"] == f"upstream failed: odd\n{ODD}"
    assert all(text.isascii() for text in raw.values())  # escaped, as json.dumps writes a str


def test_a_record_of_a_result_stored_by_reference_names_its_blob(tmp_path):
    @cs.task
    def big() -> bytes:
        return b"x" * 5000

    state = f"sqlite:///{tmp_path / 'r.db'}"
    assert cs.run(big(), state_backend=state, run_id="blob", blob_store=f"file://{tmp_path}/blobs?threshold=1K")
    from cascade_core._plugins.resolve import resolve_state

    spec = resolve_state(state)
    backend = spec.open("blob")
    try:
        (record,) = [json.loads(text) for text in backend.get_task_records().values()]
    finally:
        backend.close()
        spec.close()
    blob = record["blob"]
    assert blob.startswith("sha256:") and len(blob) == 71
    assert (tmp_path / "blobs" / "sha256" / blob[7:9] / blob[9:11] / blob[7:]).exists()
