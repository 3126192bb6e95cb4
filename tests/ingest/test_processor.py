"""The inbox processor: order, deletion, crash safety and replay without duplicates."""

from __future__ import annotations

import contextlib
import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flywheel.core.loops import LoopRunner
from flywheel.ingest import service as ingest_service
from flywheel.ingest.models import InboxRecord, Rejection
from flywheel.ingest.pipeline import ApplyResult, apply_records
from flywheel.ingest.records import IngestRecord
from flywheel.ingest.tasks import IngestProcessor
from flywheel.profiles import mirror
from flywheel.profiles.models import WarehouseOutbox
from flywheel.projects import service as projects
from flywheel.projects.schemas import ProjectIn
from flywheel.runtime import Runtime
from tests.identity.factory import all_events, rec


def enqueue(runtime: Runtime, *records: IngestRecord, project_id: int = 1) -> None:
    with runtime.db.unit_of_work() as session:
        ingest_service.enqueue(
            session=session, project_id=project_id, records=list(records), source="sensors"
        )


def count(runtime: Runtime, model: type) -> int:
    with runtime.db.unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_processor_applies_inbox_in_order_and_deletes_it(runtime: Runtime) -> None:
    enqueue(
        runtime,
        rec(event="$AppStart", anonymous_id="dev"),
        rec("track_signup", event="$SignUp", distinct_id="u1", original_id="dev"),
        rec("profile_set", login_id="u1", properties={"branch": "BR001"}),
        rec(event="BuyFund", login_id="u1", properties={"amount": 1}),
        rec(event="BuyFund", login_id="u1", properties={"amount": "x"}),
    )
    processor = IngestProcessor(runtime)
    assert processor.run_once() == 5
    assert processor.run_once() == 0
    assert count(runtime, InboxRecord) == 0
    assert count(runtime, WarehouseOutbox) == 0
    events = all_events(runtime)
    assert [e["event"] for e in events] == ["$AppStart", "$SignUp", "BuyFund"]
    assert len({e["user_id"] for e in events}) == 1
    with runtime.db.unit_of_work() as session:
        (rejection,) = session.scalars(select(Rejection)).all()
    assert rejection.source == "sensors"
    assert rejection.reason == "property amount is NUMBER; got STRING 'x'"


def test_processor_takes_one_project_at_a_time(runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as session:
        other = projects.create(session=session, project_in=ProjectIn(name="wealth")).id
    enqueue(runtime, rec(login_id="a"), rec(login_id="b"))
    enqueue(runtime, rec(login_id="c"), project_id=other)
    processor = IngestProcessor(runtime)
    assert processor.run_once() == 2
    assert processor.run_once() == 1
    assert len(all_events(runtime, other)) == 1


class Killed(BaseException):
    """The process dying (kill -9 stand-in): not an error the processor may handle."""


class CrashAfterApplying(IngestProcessor):
    """Dies after applying the batch but before its transaction commits."""

    def _apply_batch(self, session: Session, *, limit: int) -> tuple[int, ApplyResult]:
        super()._apply_batch(session, limit=limit)
        raise Killed


def test_crash_before_commit_loses_nothing(runtime: Runtime) -> None:
    enqueue(runtime, rec(login_id="k1"), rec(login_id="k2"))
    with contextlib.suppress(Killed):
        CrashAfterApplying(runtime).run_once()
    assert count(runtime, InboxRecord) == 2
    assert all_events(runtime) == []
    assert IngestProcessor(runtime).run_once() == 2
    assert len(all_events(runtime)) == 2


def test_crash_after_warehouse_append_before_outbox_delete(runtime: Runtime) -> None:
    enqueue(runtime, *(rec(login_id=f"w{i}") for i in range(10)))
    processor = IngestProcessor(runtime)
    # the batch commits (inbox rows gone, outbox row staged) …
    with runtime.db.unit_of_work() as session:
        handled, _ = processor._apply_batch(session, limit=100)
    assert handled == 10
    # … the warehouse append commits, then the process dies before deleting the outbox row
    with runtime.db.unit_of_work() as session:
        (payload,) = session.scalars(select(WarehouseOutbox.payload)).all()
    assert mirror.write(runtime.warehouse, 1, mirror.decode(payload)) == 10
    assert count(runtime, WarehouseOutbox) == 1
    # restart: the leftover is replayed and absorbed by the anti-join on event id
    assert processor.run_once() == 0
    assert count(runtime, WarehouseOutbox) == 0
    assert len(all_events(runtime)) == 10


def test_replayed_inbox_rows_do_not_duplicate_events(runtime: Runtime) -> None:
    """Append succeeded but the inbox delete did not: rerunning the rows adds nothing."""
    records = [rec(login_id="r1", event=f"E{i}") for i in range(5)]
    apply_records(runtime, project_id=1, records=records, source="sensors")
    enqueue(runtime, *records)
    assert IngestProcessor(runtime).run_once() == 5
    events = all_events(runtime)
    assert len(events) == 5
    assert len({e["id"] for e in events}) == 5


def test_sdk_retry_with_same_event_id_is_kept_once(runtime: Runtime) -> None:
    first = rec(login_id="r2", event="BuyFund", properties={"amount": 3})
    enqueue(runtime, first, first)
    enqueue(runtime, first)
    processor = IngestProcessor(runtime)
    processor.run_once()
    processor.run_once()
    assert len(all_events(runtime)) == 1


def test_unreadable_inbox_row_is_rejected_not_lost(runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as session:
        session.add(InboxRecord(project_id=1, record=b"{not json", source="sensors"))
    enqueue(runtime, rec(login_id="ok"))
    assert IngestProcessor(runtime).run_once() == 2
    with runtime.db.unit_of_work() as session:
        reasons = session.scalars(select(Rejection.reason)).all()
    assert len(reasons) == 1 and reasons[0].startswith("unreadable inbox record")
    assert len(all_events(runtime)) == 1


def test_loop_makes_events_visible(runtime: Runtime) -> None:
    runner = LoopRunner([IngestProcessor(runtime)])
    runner.start()
    try:
        enqueue(runtime, rec(login_id="live", event="Deposit", properties={"amount": 10}))
        deadline = time.monotonic() + 20
        while not all_events(runtime) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
    assert [e["event"] for e in all_events(runtime)] == ["Deposit"]


class BreaksOnPoison(IngestProcessor):
    """A processor whose pipeline hits a bug on one particular record."""

    def _stage(
        self, session: Session, project_id: int, records: list[IngestRecord], sources: list[str]
    ) -> ApplyResult:
        if any(r.event == "Poison" for r in records):
            raise ValueError("bug triggered")
        return super()._stage(session, project_id, records, sources)


def test_poison_record_is_rejected_and_the_rest_flows(runtime: Runtime) -> None:
    enqueue(runtime, rec(login_id="z1"), rec(login_id="z2", event="Poison"), rec(login_id="z3"))
    processor = BreaksOnPoison(runtime)
    assert processor.run_once() == 3
    assert count(runtime, InboxRecord) == 0
    assert len(all_events(runtime)) == 2
    with runtime.db.unit_of_work() as session:
        (rejection,) = session.scalars(select(Rejection)).all()
    assert rejection.reason == "processing failed: ValueError: bug triggered"
    assert '"event":"Poison"' in rejection.raw
