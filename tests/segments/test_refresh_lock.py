"""Concurrent refreshes of one segment: serialised, so each membership change is announced once.

Two refreshes run on two threads (two sessions) against real SQLite + DuckDB and, when
``FLYWHEEL_TEST_POSTGRES_URL`` is set, real PostgreSQL + DuckDB. The race is made certain,
not hoped for: the first refresh is held right after its diff until the second one has either
diffed as well (no lock: both announce the same change) or started a locking statement
(``UPDATE …`` / ``SELECT … FOR UPDATE``), which then waits for the first one's commit.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import event, func, select

from flywheel.core.clock import FrozenClock
from flywheel.ingest import feed
from flywheel.profiles import mirror
from flywheel.runtime import Runtime
from flywheel.segments import service
from flywheel.segments.models import SegmentMember, SegmentRun
from flywheel.segments.schemas import SegmentIn
from flywheel.segments.tasks import SegmentScheduler
from flywheel.warehouse import TableKind
from tests.rules.brokerage import naive
from tests.segments.helpers import RECENT_LOGIN, P

WATCHER = "lock-test"
HOLD_LIMIT_SECONDS = 30.0
_LOCKING = re.compile(r"^\s*UPDATE\b|\bFOR (NO KEY )?UPDATE\b", re.IGNORECASE)


def _segment_with_newcomers(runtime: Runtime, *, schedule: str = "manual") -> tuple[int, set[int]]:
    """A refreshed dynamic segment, a watcher of its changes, then five customers who log in
    now (so five will enter on the next refresh): (segment id, the newcomers)."""
    with runtime.db.unit_of_work() as session:
        segment_id = service.create_segment(
            session=session,
            warehouse=runtime.warehouse,
            project_id=P,
            segment_in=SegmentIn(name="recent logins", rule=RECENT_LOGIN, schedule=schedule),
            actor="test",
            now=runtime.clock(),
        ).id
    with runtime.db.unit_of_work() as session:
        first = service.refresh_segment(
            session=session,
            warehouse=runtime.warehouse,
            project_id=P,
            segment_id=segment_id,
            now=runtime.clock(),
        )
        feed.watch(
            session=session,
            project_id=P,
            subscriber=WATCHER,
            events=[service.ENTER_EVENT, service.LEAVE_EVENT],
        )
    members = set(_warehouse_members(runtime, segment_id))
    assert first.entered == len(members) > 0
    newcomers = {uid for uid in range(1, 401) if uid not in members}
    newcomers = set(sorted(newcomers)[:5])
    now = naive(runtime.clock())
    runtime.warehouse.append(
        P,
        TableKind.EVENTS,
        pa.table(
            {
                "id": [f"login-{uid}" for uid in sorted(newcomers)],
                "user_id": pa.array(sorted(newcomers), pa.int64()),
                "distinct_id": [str(uid) for uid in sorted(newcomers)],
                "event": ["Login"] * len(newcomers),
                "time": pa.array([now] * len(newcomers), pa.timestamp("us")),
                "$receive_time": pa.array([now] * len(newcomers), pa.timestamp("us")),
            }
        ),
    )
    return segment_id, newcomers


def _warehouse_members(runtime: Runtime, segment_id: int) -> list[int]:
    rows = runtime.warehouse.fetch(
        "SELECT user_id FROM p1_segment_members WHERE segment_id = ?", [segment_id]
    )
    return [int(r[0]) for r in rows]


def _race(
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    first: Callable[[], Any],
    second: Callable[[], Any],
) -> list[Any]:
    """Run ``first`` and ``second`` on two threads, ``first`` held right after its diff until
    ``second`` has diffed or started a locking statement; their results, in that order."""
    first_diffed = threading.Event()
    second_moved = threading.Event()
    held_too_long = threading.Event()
    first_thread: list[int] = []
    second_thread: list[int] = []
    original = service._diff_members

    def diff_then_hold(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if threading.get_ident() in first_thread:
            first_diffed.set()
            if not second_moved.wait(HOLD_LIMIT_SECONDS):
                held_too_long.set()
        elif threading.get_ident() in second_thread:
            second_moved.set()
        return result

    def watch_locks(
        _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        if threading.get_ident() in second_thread and _LOCKING.search(statement):
            second_moved.set()

    results: dict[str, Any] = {}

    def run(name: str, work: Callable[[], Any], ident: list[int]) -> None:
        ident.append(threading.get_ident())
        try:
            results[name] = work()
        except BaseException as exc:
            results[name] = exc
            first_diffed.set()
            second_moved.set()

    monkeypatch.setattr(service, "_diff_members", diff_then_hold)
    event.listen(runtime.db.engine, "before_cursor_execute", watch_locks)
    try:
        one = threading.Thread(target=run, args=("first", first, first_thread))
        two = threading.Thread(target=run, args=("second", second, second_thread))
        one.start()
        assert first_diffed.wait(HOLD_LIMIT_SECONDS)
        two.start()
        one.join()
        two.join()
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", watch_locks)
    assert not held_too_long.is_set(), "the second refresh neither diffed nor took a lock"
    for name in ("first", "second"):
        if isinstance(results[name], BaseException):
            raise results[name]
    return [results["first"], results["second"]]


def _refresh(runtime: Runtime, segment_id: int) -> Callable[[], Any]:
    def work() -> Any:
        with runtime.db.unit_of_work() as session:
            return service.refresh_segment(
                session=session,
                warehouse=runtime.warehouse,
                project_id=P,
                segment_id=segment_id,
                now=runtime.clock(),
            )

    return work


def _assert_announced_once(runtime: Runtime, segment_id: int, newcomers: set[int]) -> None:
    with runtime.db.unit_of_work() as session:
        fed = feed.take(session=session, subscriber=WATCHER, limit=1000)
        mirrored = Counter(
            session.scalars(
                select(SegmentMember.user_id).where(SegmentMember.segment_id == segment_id)
            )
        )
        entered_total = session.scalar(
            select(func.sum(SegmentRun.entered)).where(SegmentRun.segment_id == segment_id)
        )
    assert sorted(e.user_id for e in fed if e.event == service.ENTER_EVENT) == sorted(newcomers)
    assert [e for e in fed if e.event == service.LEAVE_EVENT] == []
    stored = Counter(_warehouse_members(runtime, segment_id))
    assert set(stored.values()) == {1}
    assert stored == mirrored
    assert newcomers <= set(stored)
    assert entered_total == len(stored)  # the first refresh's members plus the newcomers
    mirror.drain(db=runtime.db, warehouse=runtime.warehouse)  # the staged warehouse events
    entered_events = runtime.warehouse.fetch(
        "SELECT user_id, COUNT(*) FROM p1_events WHERE event = ? AND segment_id = ? "
        "GROUP BY user_id",
        [service.ENTER_EVENT, float(segment_id)],
    )
    assert {int(uid): int(n) for uid, n in entered_events} == dict.fromkeys(stored, 1)


def test_overlapping_refreshes_announce_each_newcomer_once(
    brokerage: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment_id, newcomers = _segment_with_newcomers(brokerage)
    first, second = _race(
        brokerage, monkeypatch, _refresh(brokerage, segment_id), _refresh(brokerage, segment_id)
    )
    _assert_announced_once(brokerage, segment_id, newcomers)
    assert (first.entered, first.left) == (len(newcomers), 0)
    # The second refresh waited for the first one's commit and diffed against its result.
    assert (second.entered, second.left, second.size) == (0, 0, first.size)


def test_two_schedulers_refresh_a_due_segment_once(
    brokerage: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment_id, newcomers = _segment_with_newcomers(brokerage, schedule="hourly")
    assert isinstance(brokerage.clock, FrozenClock)
    brokerage.clock.advance(timedelta(hours=1))
    schedulers = [SegmentScheduler(brokerage), SegmentScheduler(brokerage)]
    done = _race(brokerage, monkeypatch, schedulers[0].run_once, schedulers[1].run_once)
    _assert_announced_once(brokerage, segment_id, newcomers)
    # The second scheduler found the segment refreshed this hour once it had its lock.
    assert done == [1, 0]
    with brokerage.db.unit_of_work() as session:
        runs = service.runs(session=session, project_id=P, segment_id=segment_id)
    assert len(runs) == 2 and runs[0].entered == len(newcomers)
