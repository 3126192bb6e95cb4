"""Building ingest records and reading the warehouse back, for identity/profile/ingest tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from flywheel.ingest.pipeline import ApplyResult, apply_records
from flywheel.ingest.records import IngestRecord
from flywheel.runtime import Runtime

_ids = itertools.count(1)
BASE_TIME = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def rec(type_: str = "track", **fields: Any) -> IngestRecord:
    """A record with a fresh event id and increasing time unless given."""
    n = next(_ids)
    fields.setdefault("event_id", f"e{n}")
    fields.setdefault("time", BASE_TIME + timedelta(seconds=n))
    if type_ == "track":
        fields.setdefault("event", "Login")
    return IngestRecord(type=type_, **fields)  # type: ignore[arg-type]


def apply(runtime: Runtime, *records: IngestRecord, project_id: int = 1) -> ApplyResult:
    return apply_records(runtime, project_id=project_id, records=list(records), source="test")


def events_of(runtime: Runtime, user_id: int, project_id: int = 1) -> list[dict[str, Any]]:
    return runtime.warehouse.fetch_dicts(
        f'SELECT * FROM "p{project_id}_events" WHERE user_id = ? ORDER BY time', [user_id]
    )


def all_events(runtime: Runtime, project_id: int = 1) -> list[dict[str, Any]]:
    return runtime.warehouse.fetch_dicts(f'SELECT * FROM "p{project_id}_events" ORDER BY time')
