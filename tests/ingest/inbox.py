"""Reading the ingest tables back in tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from flywheel.ingest.models import InboxRecord, Rejection
from flywheel.ingest.records import IngestRecord
from flywheel.runtime import Runtime


def inbox(runtime: Runtime) -> list[tuple[str, IngestRecord]]:
    """``(source, record)`` of every inbox row, oldest first."""
    with runtime.db.unit_of_work() as session:
        rows = session.execute(
            select(InboxRecord.source, InboxRecord.record).order_by(InboxRecord.id)
        ).all()
    return [(source, IngestRecord.from_json(raw)) for source, raw in rows]


def rejections(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.db.unit_of_work() as session:
        rows = session.scalars(select(Rejection).order_by(Rejection.id)).all()
        return [
            {"source": r.source, "reason": r.reason, "raw": r.raw, "project_id": r.project_id}
            for r in rows
        ]
