"""Building journeys and driving the engine in tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from flywheel.channels.models import Message
from flywheel.ingest.tasks import IngestProcessor
from flywheel.journeys.engine import Engine
from flywheel.journeys.models import JourneyState
from flywheel.runtime import Runtime

CANONICAL: dict[str, Any] = {
    "name": "first purchase thanks",
    "purpose": "service",
    "reentry": "never",
    "nodes": [
        {"id": "in", "type": "entry_event", "event": "BuyFund"},
        {
            "id": "send",
            "type": "send",
            "channel": "webhook",
            "webhook": {"url": "http://127.0.0.1:9/hook", "secret": "s3cret"},
            "content": {"text": "感谢{{ user.name | default('客户') }}的首次申购"},
        },
        {"id": "out", "type": "exit"},
    ],
    "edges": [{"from": "in", "to": "send"}, {"from": "send", "to": "out"}],
}


def settle(runtime: Runtime, rounds: int = 20) -> int:
    """Run ingest and the engine until both are idle; customers moved."""
    processor, engine = IngestProcessor(runtime), Engine(runtime)
    moved = 0
    for _ in range(rounds):
        done = processor.run_once()
        step = engine.run_once()
        moved += step
        if done == 0 and step == 0:
            break
    processor.run_once()  # drain system events into the warehouse
    return moved


def messages(runtime: Runtime) -> list[Message]:
    with runtime.db.unit_of_work() as session:
        rows = list(session.scalars(select(Message).order_by(Message.id)))
        session.expunge_all()
        return rows


def states(runtime: Runtime) -> list[JourneyState]:
    with runtime.db.unit_of_work() as session:
        rows = list(session.scalars(select(JourneyState).order_by(JourneyState.id)))
        session.expunge_all()
        return rows
