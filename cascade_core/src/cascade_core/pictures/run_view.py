"""What happened to each node of one stored run, read through the state backend's public methods.

A task record's ``status`` (``done``, ``cached``, ``failed``, ``skipped``, see
docs/backends.md) becomes a picture status: ``done`` is ``resumed`` when it finished before
the run's last attempt started (its ``driver_started``) and ``executed`` otherwise, or
``other_driver`` when the record names a ``driver`` other than the run's. A node with a
stored result but no record counts as executed; one with neither is ``not_reached``.
Records name their ``upstream`` node ids (those written before they did have none: their
edges are unknown), and a retried task's record its ``failed_attempts``. A node added during
the run names its ``parent`` (the map, router or graph-returning task that expanded into it),
and a map's or router's record its ``kind``; records without them (written before cascade-core
recorded them) have None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from .._build.gc_pause import collection_paused
from .._times import parse_time


class Attempt(NamedTuple):
    """A failed attempt of a task that was retried."""

    finished: datetime | None
    duration: float | None
    error: str | None

    @property
    def started(self) -> datetime | None:
        return None if self.finished is None else self.finished - timedelta(seconds=self.duration or 0.0)


class TaskRecord(NamedTuple):
    node_id: str
    task: str
    status: str  # a key of palette.STYLES
    duration: float | None
    size: int | None
    text: str | None  # the error of a failed task, the reason of a skipped one
    finished: datetime | None
    blob: str | None = None  # the blob id of a result stored by reference (docs/blobs.md)
    upstream: tuple[str, ...] | None = None  # the node ids of its inputs; None: not recorded (older records)
    after: tuple[str, ...] = ()  # the node ids it runs .after() without taking their values
    failed_attempts: tuple[Attempt, ...] = ()  # earlier attempts that failed and were retried
    parent: str | None = None  # the node that expanded into this one during the run, if any
    kind: str | None = None  # "map" or "router" for those dynamic nodes
    routes: int | None = None  # a router's number of routes

    @property
    def started(self) -> datetime | None:
        if self.finished is None:
            return None
        return self.finished - timedelta(seconds=self.duration or 0.0)

    @property
    def attempts(self) -> int:
        return len(self.failed_attempts) + 1


def short_name(task: str) -> str:
    """A task's name as pictures show it: after the last dot, ``square.map`` for a map's node."""
    head, _, last = task.rpartition(".")
    if last == "map" and head:
        return f"{head.rpartition('.')[2]}.map"
    return last or task


class RunView:
    """One run: its info (strings, as stored) and a record per node it knows of."""

    def __init__(self, run_id: str, info: Mapping[str, Any], records: dict[str, TaskRecord]) -> None:
        self.run_id = run_id
        self.info = dict(info)
        self.records = records

    def status_of(self, node_id: str) -> str:
        record = self.records.get(node_id)
        return "not_reached" if record is None else record.status

    @classmethod
    def read(cls, backend: Any, info: Mapping[str, Any] | None = None) -> RunView:
        """Read ``backend`` (a state backend bound to the run); ``info`` replaces its run info when given."""
        if info is None:
            info = backend.get_run_info()
        stored = backend.result_ids()
        reasons = backend.get_skip_reasons()
        getter = getattr(backend, "get_task_records", None)
        raw = getter() if callable(getter) else {}
        return cls.from_stored(backend.run_id, info, stored, reasons, raw)

    @classmethod
    def from_stored(
        cls,
        run_id: str,
        info: Mapping[str, Any],
        stored: set[str],
        reasons: Mapping[str, str],
        raw: Mapping[str, str],
    ) -> RunView:
        from .._run.expansion import GRAPH_SUFFIX

        # A graph a task returned is stored beside its node (<id>.graph): not a node of its own.
        stored = {node_id for node_id in stored if not node_id.endswith(GRAPH_SUFFIX)}
        attempt = parse_time(info.get("driver_started"))
        driver = info.get("driver") or ""
        parsed = _parse_all(raw)
        times: dict[Any, datetime | None] = {}  # many records share a millisecond
        records: dict[str, TaskRecord] = {}
        with collection_paused():  # 100,000s of records: pure computation
            for node_id in set(stored) | set(reasons) | set(raw):
                fields = parsed.get(node_id) or {}
                stamp = fields.get("finished")
                finished = times[stamp] if stamp in times else times.setdefault(stamp, parse_time(stamp))
                status = _status(fields, node_id in stored, node_id in reasons, finished, attempt, driver)
                text = None
                if status == "skipped":
                    text = reasons.get(node_id) or _text(fields.get("reason"))
                elif status == "failed":
                    text = _text(fields.get("error"))
                    if attempt is not None and finished is not None and finished < attempt:
                        text = f"earlier attempt: {text or '?'}"
                records[node_id] = TaskRecord(
                    node_id,
                    _text(fields.get("task")) or "?",
                    status,
                    _number(fields.get("duration"), float),
                    _number(fields.get("size"), int),
                    text,
                    finished,
                    _text(fields.get("blob")),
                    _ids(fields.get("upstream")),
                    _ids(fields.get("after")) or (),
                    _attempts(fields.get("failed_attempts"), times),
                    _text(fields.get("parent")),
                    _text(fields.get("kind")),
                    _number(fields.get("routes"), int),
                )
        return cls(run_id, info, records)

    def ordered(self) -> list[TaskRecord]:
        """The records in the order they finished, then by task name (no time: last)."""
        far = datetime.max.replace(tzinfo=timezone.utc)
        return sorted(self.records.values(), key=lambda r: (r.finished or far, r.task, r.node_id))


def _parse_all(raw: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The records as dicts: in one parse when every one is valid JSON, else one by one (bad ones left out)."""
    ids = list(raw)
    try:
        values = json.loads("[" + ",".join(raw[node_id] for node_id in ids) + "]")
        if len(values) == len(ids):
            return {node_id: value for node_id, value in zip(ids, values) if isinstance(value, dict)}
    except ValueError:
        pass
    parsed = {}
    for node_id in ids:
        try:
            value = json.loads(raw[node_id])
        except ValueError:
            continue
        if isinstance(value, dict):
            parsed[node_id] = value
    return parsed


def _status(
    fields: Mapping[str, Any], stored: bool, reason: bool, finished: datetime | None, attempt: Any, driver: str
) -> str:
    recorded = fields.get("status")
    if recorded == "cached":
        return "cached"
    if not stored and recorded in ("failed", "skipped"):
        return str(recorded)
    if not stored and recorded != "done":
        return "skipped" if reason else "not_reached"  # no readable record
    if attempt is not None and finished is not None and finished < attempt:
        return "resumed"  # stored by an earlier attempt, whichever driver made it
    other = fields.get("driver")
    if isinstance(other, str) and other and driver and other != driver:
        return "other_driver"  # stored during this attempt by another driver sharing the run
    return "executed"


def _ids(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(item for item in value if isinstance(item, str))


def _attempts(value: Any, times: dict[Any, datetime | None]) -> tuple[Attempt, ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for item in value:
        if isinstance(item, dict):
            stamp = item.get("finished")
            finished = times[stamp] if stamp in times else times.setdefault(stamp, parse_time(stamp))
            out.append(Attempt(finished, _number(item.get("duration"), float), _text(item.get("error"))))
    return tuple(out)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)
