"""The ingest processor loop: inbox → identities, profiles, items, schema → warehouse.

Crash safety. One operational transaction applies a batch, stages its warehouse rows in the
outbox and deletes its inbox rows, all or nothing; the outbox is then drained into the
warehouse, and an outbox row is deleted only after its warehouse transaction committed. So an
acknowledged record is always either in the inbox or in the outbox until it reached the
warehouse, and a replay (crash after the warehouse commit) is absorbed by the anti-join on
event id. Leftover outbox rows are drained first on every run.
"""

from __future__ import annotations

import time

import structlog
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from flywheel.core.loops import LoopService
from flywheel.ingest import service as ingest_service
from flywheel.ingest.models import InboxRecord
from flywheel.ingest.pipeline import ApplyResult, stage_records
from flywheel.ingest.records import IngestRecord
from flywheel.profiles import mirror
from flywheel.runtime import Runtime

log = structlog.get_logger(__name__)


class IngestProcessor(LoopService):
    """Applies inbox rows in id order, one project and up to ``processor_batch_size`` at a time."""

    name = "ingest-processor"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.interval_seconds = runtime.settings.processor_interval_seconds
        self.batch_size = runtime.settings.processor_batch_size

    def run_once(self) -> int:
        """Drain leftovers, apply one inbox batch, drain it; return inbox rows handled.

        A batch that fails for a reason other than the database being unavailable is retried
        one row at a time, and a row that still fails is rejected with the error as its reason
        (kept with its raw record), so one poison record cannot stall the inbox.
        """
        runtime = self.runtime
        mirror.drain(db=runtime.db, warehouse=runtime.warehouse)
        started = time.perf_counter()
        try:
            with runtime.db.unit_of_work() as session:
                handled, result = self._apply_batch(session, limit=self.batch_size)
        except OperationalError:
            raise  # the store is unavailable or locked: retry the whole batch next tick
        except Exception:
            log.exception("inbox_batch_failed")
            handled, result = self._apply_one_by_one()
        if handled == 0:
            return 0
        mirror.drain(db=runtime.db, warehouse=runtime.warehouse)
        log.info(
            "inbox_batch_processed",
            rows=handled,
            accepted=result.accepted,
            rejected=len(result.rejected),
            seconds=round(time.perf_counter() - started, 4),
        )
        return handled

    def _apply_one_by_one(self) -> tuple[int, ApplyResult]:
        total = ApplyResult()
        handled = 0
        for _ in range(self.batch_size):
            try:
                with self.runtime.db.unit_of_work() as session:
                    done, result = self._apply_batch(session, limit=1)
            except OperationalError:
                raise
            except Exception as exc:
                done, result = self._reject_first(exc)
            if done == 0:
                break
            handled += done
            total.accepted += result.accepted
            total.rejected.extend(result.rejected)
        return handled, total

    def _reject_first(self, exc: Exception) -> tuple[int, ApplyResult]:
        """Reject the oldest inbox row (it failed alone) with the error as the reason."""
        with self.runtime.db.unit_of_work() as session:
            row = session.execute(
                select(InboxRecord.id, InboxRecord.project_id, InboxRecord.record)
                .order_by(InboxRecord.id)
                .limit(1)
            ).first()
            if row is None:
                return 0, ApplyResult()
            reason = f"processing failed: {type(exc).__name__}: {str(exc)[:500]}"
            raw = bytes(row.record).decode(errors="replace")
            ingest_service.record_rejections(
                session=session,
                project_id=row.project_id,
                source="processor",
                rejections=[(reason, raw)],
            )
            session.execute(delete(InboxRecord).where(InboxRecord.id == row.id))
        log.warning(
            "inbox_record_rejected_after_failure", inbox_id=row.id, error=type(exc).__name__
        )
        return 1, ApplyResult(rejected=[(reason, raw)])

    def _stage(
        self, session: Session, project_id: int, records: list[IngestRecord], sources: list[str]
    ) -> ApplyResult:
        return stage_records(
            session=session,
            project_id=project_id,
            records=records,
            sources=sources,
            now=self.runtime.clock(),
        )

    def _apply_batch(self, session: Session, *, limit: int) -> tuple[int, ApplyResult]:
        project_id = session.scalar(
            select(InboxRecord.project_id).order_by(InboxRecord.id).limit(1)
        )
        if project_id is None:
            return 0, ApplyResult()
        if session.get_bind().dialect.name == "postgresql":
            # One processor per project at a time across workers: order matters to identities.
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 7_000_000 + project_id})
        rows = session.execute(
            select(InboxRecord.id, InboxRecord.record, InboxRecord.source)
            .where(InboxRecord.project_id == project_id)
            .order_by(InboxRecord.id)
            .limit(limit)
        ).all()
        if not rows:  # another worker took them while we waited for the lock
            return 0, ApplyResult()
        records: list[IngestRecord] = []
        sources: list[str] = []
        unreadable: list[tuple[str, str]] = []
        for _, raw, source in rows:
            try:
                records.append(IngestRecord.from_json(raw))
                sources.append(source)
            except (ValueError, TypeError, KeyError) as exc:
                unreadable.append(
                    (f"unreadable inbox record: {exc}", bytes(raw).decode(errors="replace"))
                )
        result = self._stage(session, project_id, records, sources)
        if unreadable:
            ingest_service.record_rejections(
                session=session, project_id=project_id, source="processor", rejections=unreadable
            )
            result.rejected.extend(unreadable)
        ids = [row[0] for row in rows]
        for start in range(0, len(ids), 1000):
            session.execute(
                delete(InboxRecord).where(InboxRecord.id.in_(ids[start : start + 1000]))
            )
        return len(rows), result


def inbox_depth(*, session: Session) -> int:
    """Rows waiting in the inbox (all projects)."""
    return int(session.scalar(select(func.count()).select_from(InboxRecord)) or 0)
