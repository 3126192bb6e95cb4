"""Worker loops: scheduled training and slot-event counting."""

from __future__ import annotations

from datetime import timedelta

from flywheel.core.clock import FrozenClock
from flywheel.recommend import service
from flywheel.recommend.tasks import RecommendTrainer, SlotEventCounter, build_loops
from flywheel.runtime import Runtime
from tests.recommend.conftest import FAST, Brokerage, put_events


def test_trainer_trains_when_due(
    runtime: Runtime, brokerage: Brokerage, clock: FrozenClock
) -> None:
    with runtime.db.unit_of_work() as session:
        service.put_training_config(
            session=session,
            project_id=brokerage.project_id,
            config=FAST.model_copy(update={"retrain_hours": 6.0}),
            now=clock(),
        )
    trainer = RecommendTrainer(runtime)
    assert trainer.run_once() == 1  # no model yet
    assert trainer.run_once() == 0  # fresh
    clock.advance(timedelta(hours=5))
    assert trainer.run_once() == 0
    clock.advance(timedelta(hours=1))
    assert trainer.run_once() == 1
    with runtime.db.unit_of_work() as session:
        models = service.list_models(session=session, project_id=brokerage.project_id)
    assert [m.version for m in models] == [2, 1]
    assert models[0].n_interactions > 0


def test_slot_event_counter(runtime: Runtime, brokerage: Brokerage) -> None:
    user_id = brokerage.users["cust-7"]
    now = brokerage.now.replace(tzinfo=None)
    put_events(
        runtime,
        brokerage.project_id,
        [
            {"user_id": user_id, "event": name, "time": now, "item_type": "fund", "item_id": "F001"}
            for name in ("itemShow", "itemShow", "itemClick")
        ],
    )
    counter = SlotEventCounter(runtime)
    assert counter.run_once() == 3
    assert counter.run_once() == 0
    with runtime.db.unit_of_work() as session:
        counts = service.record_feedback(
            session=session,
            project_id=brokerage.project_id,
            user_id=user_id,
            item_type="fund",
            item_id="F001",
            action="click",
            now=brokerage.now,
        )
    assert (counts.shown, counts.clicked) == (2, 2)


def test_loops_are_registered(runtime: Runtime) -> None:
    assert [loop.name for loop in build_loops(runtime)] == [
        "recommend-trainer",
        "recommend-slot-events",
    ]
