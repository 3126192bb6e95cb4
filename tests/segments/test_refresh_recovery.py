"""A refresh whose operational transaction fails is announced in full by the next one.

The operational membership (``segment_members``) records what has been announced; the
warehouse membership is a copy reconciled on every refresh. A refresh is made to fail at a real
point — the live-feed publish raises, or the unit of work's commit is refused — after its
warehouse work, and a normal refresh follows: every change is in the feed once, the run history
counts it once, the warehouse events hold it once, and both memberships agree. Real SQLite +
DuckDB always, PostgreSQL + DuckDB when ``FLYWHEEL_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import event, select

from flywheel.core.clock import FrozenClock
from flywheel.ingest import feed
from flywheel.profiles import mirror
from flywheel.runtime import Runtime
from flywheel.segments import service
from flywheel.segments.models import Segment, SegmentMember, SegmentRun
from flywheel.segments.schemas import RefreshOut, SegmentIn
from flywheel.warehouse import TableKind
from tests.rules.brokerage import naive
from tests.segments.helpers import RECENT_LOGIN, P

WATCHER = "recovery-test"


class InjectedFailure(Exception):
    """The failure a test injects."""


def _refresh(runtime: Runtime, segment_id: int) -> RefreshOut:
    with runtime.db.unit_of_work() as session:
        return service.refresh_segment(
            session=session,
            warehouse=runtime.warehouse,
            project_id=P,
            segment_id=segment_id,
            now=runtime.clock(),
        )


def _watched_segment(runtime: Runtime) -> tuple[int, set[int]]:
    """A refreshed dynamic segment whose changes a subscriber watches from now on, then two
    days later with five customers who log in now (so some leave and five enter on the next
    refresh): (segment id, the members of the first refresh)."""
    with runtime.db.unit_of_work() as session:
        segment_id = service.create_segment(
            session=session,
            warehouse=runtime.warehouse,
            project_id=P,
            segment_in=SegmentIn(name="recent logins", rule=RECENT_LOGIN),
            actor="test",
            now=runtime.clock(),
        ).id
    _refresh(runtime, segment_id)
    with runtime.db.unit_of_work() as session:
        feed.watch(
            session=session,
            project_id=P,
            subscriber=WATCHER,
            events=[service.ENTER_EVENT, service.LEAVE_EVENT],
        )
    members = set(_mirrored(runtime, segment_id))
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(timedelta(days=2))
    newcomers = sorted(uid for uid in range(1, 401) if uid not in members)[:5]
    now = naive(runtime.clock())
    runtime.warehouse.append(
        P,
        TableKind.EVENTS,
        pa.table(
            {
                "id": [f"login-{uid}" for uid in newcomers],
                "user_id": pa.array(newcomers, pa.int64()),
                "distinct_id": [str(uid) for uid in newcomers],
                "event": ["Login"] * len(newcomers),
                "time": pa.array([now] * len(newcomers), pa.timestamp("us")),
                "$receive_time": pa.array([now] * len(newcomers), pa.timestamp("us")),
            }
        ),
    )
    return segment_id, members


def _warehouse_members(runtime: Runtime, segment_id: int) -> Counter[int]:
    rows = runtime.warehouse.fetch(
        "SELECT user_id FROM p1_segment_members WHERE segment_id = ?", [segment_id]
    )
    return Counter(int(r[0]) for r in rows)


def _mirrored(runtime: Runtime, segment_id: int) -> Counter[int]:
    with runtime.db.unit_of_work() as session:
        return Counter(
            session.scalars(
                select(SegmentMember.user_id).where(SegmentMember.segment_id == segment_id)
            )
        )


def _fed(runtime: Runtime) -> Counter[tuple[str, int]]:
    with runtime.db.unit_of_work() as session:
        rows = feed.take(session=session, subscriber=WATCHER, limit=10_000)
    return Counter((e.event, e.user_id) for e in rows)


def _warehouse_events(runtime: Runtime, segment_id: int) -> Counter[tuple[str, int]]:
    mirror.drain(db=runtime.db, warehouse=runtime.warehouse)
    rows = runtime.warehouse.fetch(
        "SELECT event, user_id FROM p1_events "
        "WHERE event IN ('$SegmentEnter', '$SegmentLeave') AND segment_id = ?",
        [float(segment_id)],
    )
    return Counter((str(name), int(uid)) for name, uid in rows)


def _fail_feed_publish(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The live-feed publish raises once (inside the refresh)."""
    original = feed.publish

    def publish_once(**kwargs: Any) -> int:
        monkeypatch.setattr(feed, "publish", original)
        raise InjectedFailure("feed unavailable")

    monkeypatch.setattr(feed, "publish", publish_once)


def _fail_commit(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next commit of the operational store is refused (after the refresh returned)."""

    def refuse_once(_session: Any) -> None:
        event.remove(runtime.db.sessions, "before_commit", refuse_once)
        raise InjectedFailure("commit refused")

    event.listen(runtime.db.sessions, "before_commit", refuse_once)


@pytest.mark.parametrize("fail", [_fail_feed_publish, _fail_commit], ids=["publish", "commit"])
def test_changes_of_a_failed_refresh_are_announced_once_by_the_next(
    brokerage: Runtime, monkeypatch: pytest.MonkeyPatch, fail: Any
) -> None:
    segment_id, before = _watched_segment(brokerage)
    fail(brokerage, monkeypatch)
    with pytest.raises(InjectedFailure):
        _refresh(brokerage, segment_id)
    after = _refresh(brokerage, segment_id)

    members = _mirrored(brokerage, segment_id)
    entered, left = set(members) - before, before - set(members)
    assert entered and left  # newcomers entered, the oldest logins fell out of the window
    assert (after.entered, after.left, after.size) == (len(entered), len(left), len(members))
    expected = Counter(
        [(service.ENTER_EVENT, u) for u in entered] + [(service.LEAVE_EVENT, u) for u in left]
    )
    assert _fed(brokerage) == expected
    assert _warehouse_members(brokerage, segment_id) == members
    assert set(members.values()) == {1}
    with brokerage.db.unit_of_work() as session:
        history = [
            (r.entered, r.left)
            for r in session.scalars(
                select(SegmentRun)
                .where(SegmentRun.segment_id == segment_id)
                .order_by(SegmentRun.id)
            )
        ]
    assert history == [(len(before), 0), (len(entered), len(left))]
    first = Counter((service.ENTER_EVENT, u) for u in before)
    assert _warehouse_events(brokerage, segment_id) == first + expected


def test_a_drifted_warehouse_copy_is_repaired_without_announcements(brokerage: Runtime) -> None:
    segment_id, _ = _watched_segment(brokerage)
    changed = _refresh(brokerage, segment_id)
    assert changed.entered and changed.left
    announced = _fed(brokerage)  # taken, not acknowledged: a later take sees them again
    members = _mirrored(brokerage, segment_id)
    dropped, stranger = min(members), max(set(range(1, 401)) - set(members))
    brokerage.warehouse.cursor().execute(
        "DELETE FROM p1_segment_members WHERE segment_id = ? AND user_id = ?",
        [segment_id, dropped],
    )
    brokerage.warehouse.cursor().execute(
        "INSERT INTO p1_segment_members VALUES (?, ?, now()::TIMESTAMP)", [segment_id, stranger]
    )
    again = _refresh(brokerage, segment_id)
    assert (again.entered, again.left) == (0, 0)
    assert _warehouse_members(brokerage, segment_id) == members
    assert _fed(brokerage) == announced


def test_one_failing_segment_does_not_hold_back_the_others(
    brokerage: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler refreshes each due segment in its own savepoint: a segment whose rule
    cannot be computed is skipped, and the other segments' changes are announced."""
    from flywheel.core.errors import InvalidInput

    segment_id, before = _watched_segment(brokerage)
    broken_rule = {
        "rules": [{**RECENT_LOGIN["rules"][0], "window": {"relative_days": 4}}]  # type: ignore[dict-item]
    }
    with brokerage.db.unit_of_work() as session:
        broken = service.create_segment(
            session=session,
            warehouse=brokerage.warehouse,
            project_id=P,
            segment_in=SegmentIn(name="broken", rule=broken_rule),
            actor="test",
            now=brokerage.clock(),
        ).id
    real = service._compile

    def compile_(**kwargs: Any) -> Any:
        if kwargs["rule"].model_dump(exclude_none=True)["rules"][0]["window"] == {
            "relative_days": 4
        }:
            raise InvalidInput("the rule reads a tag that was deleted")
        return real(**kwargs)

    monkeypatch.setattr(service, "_compile", compile_)
    for _ in range(2):  # the broken segment stays due; the other is done after the first tick
        with brokerage.db.unit_of_work() as session:
            done = service.refresh_due(
                session=session, warehouse=brokerage.warehouse, now=brokerage.clock()
            )
        assert broken not in [d.segment_id for d in done]
    members = _mirrored(brokerage, segment_id)
    entered, left = set(members) - before, before - set(members)
    assert entered and left
    assert _fed(brokerage) == Counter(
        [(service.ENTER_EVENT, u) for u in entered] + [(service.LEAVE_EVENT, u) for u in left]
    )
    assert _warehouse_members(brokerage, segment_id) == members


def test_deleting_a_segment_while_it_refreshes_waits_instead_of_deadlocking(
    brokerage: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delete takes the refresh lock first, in the refresh's order (segment, then members)."""
    import threading

    segment_id, _ = _watched_segment(brokerage)
    diffed = threading.Event()
    release = threading.Event()
    real = service._diff_members

    def held_diff(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        diffed.set()
        release.wait(10)  # the refresh holds its lock here while the delete starts
        return out

    monkeypatch.setattr(service, "_diff_members", held_diff)
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            _refresh(brokerage, segment_id)
        except BaseException as exc:
            errors.append(exc)

    def delete() -> None:
        try:
            with brokerage.db.unit_of_work() as session:
                service.delete_segment(
                    session=session,
                    warehouse=brokerage.warehouse,
                    project_id=P,
                    segment_id=segment_id,
                )
        except BaseException as exc:
            errors.append(exc)

    refresher = threading.Thread(target=refresh)
    refresher.start()
    assert diffed.wait(10)
    deleter = threading.Thread(target=delete)
    deleter.start()
    deleter.join(0.5)  # the delete waits for the refresh's lock
    release.set()
    refresher.join(30)
    deleter.join(30)
    assert not errors, errors
    with brokerage.db.unit_of_work() as session:
        assert session.get(Segment, segment_id) is None
    assert not _mirrored(brokerage, segment_id)
    assert not _warehouse_members(brokerage, segment_id)
