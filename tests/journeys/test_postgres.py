"""The engine on PostgreSQL: bulk writes through psycopg, due states shared by two engines
with SKIP LOCKED, never a message twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flywheel.bootstrap import open_runtime
from flywheel.channels.models import Message
from flywheel.config import Settings
from flywheel.core.clock import FrozenClock
from flywheel.journeys import service
from flywheel.journeys.engine import Engine
from flywheel.journeys.models import JourneyState
from flywheel.journeys.schemas import JourneyDefinition
from flywheel.runtime import Runtime
from flywheel.segments import service as segments
from flywheel.segments.schemas import SegmentIn

CUSTOMERS = 3_000


@pytest.fixture
def pg_runtime(postgres_url: str, tmp_path: Path, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = open_runtime(Settings(env="test", data_dir=tmp_path, database_url=postgres_url))
    runtime.clock = clock  # type: ignore[misc]
    yield runtime
    runtime.close()


def test_segment_entry_then_delay_shared_by_two_engines(
    pg_runtime: Runtime, clock: FrozenClock
) -> None:
    runtime = pg_runtime
    now = clock.now
    with runtime.db.unit_of_work() as session:
        segment = segments.create_segment(
            session=session,
            warehouse=runtime.warehouse,
            project_id=1,
            segment_in=SegmentIn(
                name="pg",
                source="analysis",
                mode="static",
                user_ids=list(range(1, CUSTOMERS + 1)),
            ),
            actor="test",
            now=now,
        )
        definition = JourneyDefinition.model_validate(
            {
                "name": "pg",
                "purpose": "service",
                "nodes": [
                    {"id": "in", "type": "entry_segment", "segment_id": segment.id},
                    {"id": "d", "type": "delay", "mode": "duration", "seconds": 60},
                    {
                        "id": "s",
                        "type": "send",
                        "channel": "webhook",
                        "webhook": {"url": "http://127.0.0.1:9/h", "secret": "x"},
                        "content": {"text": "hi"},
                    },
                    {"id": "out", "type": "exit"},
                ],
                "edges": [
                    {"from": "in", "to": "d"},
                    {"from": "d", "to": "s"},
                    {"from": "s", "to": "out"},
                ],
            }
        )
        created = service.create_journey(
            session=session, project_id=1, definition=definition, principal=None, now=now
        )
        service.publish(session=session, project_id=1, journey_id=created.id, actor="t", now=now)
    assert Engine(runtime).enter_segments() == CUSTOMERS
    clock.advance(timedelta(minutes=2))

    from flywheel.journeys import engine as engine_module

    engine_module.DUE_BATCH = 250  # many small claims, so both engines take part
    moved: list[int] = []

    def work() -> None:
        engine = Engine(runtime)
        total = 0
        while step := engine.advance_due():
            total += step
        moved.append(total)

    try:
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        engine_module.DUE_BATCH = 10_000
    assert sum(moved) == CUSTOMERS
    with runtime.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == CUSTOMERS
        assert session.scalar(select(func.count(func.distinct(Message.user_id)))) == CUSTOMERS
        done = session.scalar(
            select(func.count()).select_from(JourneyState).where(JourneyState.status == "done")
        )
        assert done == CUSTOMERS
