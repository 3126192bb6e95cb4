"""System events ($Journey*, $Message*) written back to the event store for analytics.

Staged in the caller's transaction through the warehouse outbox (the same crash-safe path as
ingested events: drained by the ingest processor, anti-joined on id), so a transition, its
messages and its events commit or vanish together. Ids are deterministic, so a replay never
duplicates an event.

Event names and their properties (all optional but ``journey_id`` for journey events):

=====================  ===========================================================
``$JourneyEnter``      journey_id, journey_version, variant
``$JourneyNodeEnter``  journey_id, journey_version, node_id, node_type, variant
``$JourneyExit``       journey_id, journey_version, node_id, reason
``$JourneyGoal``       journey_id, journey_version, node_id, goal, variant
``$MessagePrepared``   message_id, journey_id, journey_version, node_id, variant, channel
``$MessageSent`` / ``$MessageDelivered`` / ``$MessageFailed`` / ``$MessageBlocked`` /
``$MessageOpened`` / ``$MessageClicked``  as prepared, plus ``reason`` (failed/blocked)
=====================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from flywheel.core.clock import utc_naive
from flywheel.profiles import mirror
from flywheel.profiles import service as profiles
from flywheel.warehouse.engine import ARROW_TYPES, BASE_ARROW, PropertyType, TableKind

JOURNEY_ENTER = "$JourneyEnter"
NODE_ENTER = "$JourneyNodeEnter"
JOURNEY_EXIT = "$JourneyExit"
GOAL = "$JourneyGoal"
MESSAGE_PREPARED = "$MessagePrepared"
MESSAGE_SENT = "$MessageSent"
MESSAGE_DELIVERED = "$MessageDelivered"
MESSAGE_FAILED = "$MessageFailed"
MESSAGE_BLOCKED = "$MessageBlocked"
MESSAGE_OPENED = "$MessageOpened"
MESSAGE_CLICKED = "$MessageClicked"

#: Types of every system event property (registered in the project's schema).
PROPERTY_TYPES: dict[str, PropertyType] = {
    "journey_id": PropertyType.NUMBER,
    "journey_version": PropertyType.NUMBER,
    "node_id": PropertyType.STRING,
    "node_type": PropertyType.STRING,
    "variant": PropertyType.STRING,
    "channel": PropertyType.STRING,
    "message_id": PropertyType.NUMBER,
    "reason": PropertyType.STRING,
    "goal": PropertyType.STRING,
}
_SAMPLE: dict[str, Any] = {
    name: 1 if ptype is PropertyType.NUMBER else "x" for name, ptype in PROPERTY_TYPES.items()
}


@dataclass
class SystemEvent:
    """One system event; ``id`` must be deterministic (e.g. ``msg42-sent``)."""

    id: str
    user_id: int
    event: str
    time: datetime
    properties: dict[str, Any] = field(default_factory=dict)


def emit(
    *, session: Session, project_id: int, events: Sequence[SystemEvent], now: datetime
) -> None:
    """Stage ``events`` for the warehouse in the caller's transaction."""
    if not events:
        return
    checker = profiles.PropertyChecker(profiles.load_schema(session=session, project_id=project_id))
    checker.check(TableKind.EVENTS, _SAMPLE)  # registers the types once; raises on a clash
    checker.flush(session=session, project_id=project_id)
    received = utc_naive(now)
    naive: dict[datetime, datetime] = {}

    def utc(moment: datetime) -> datetime:
        found = naive.get(moment)
        if found is None:
            found = naive[moment] = utc_naive(moment)
        return found

    columns: dict[str, pa.Array] = {
        "id": pa.array([e.id for e in events], BASE_ARROW["id"]),
        "user_id": pa.array([e.user_id for e in events], BASE_ARROW["user_id"]),
        "distinct_id": pa.array([str(e.user_id) for e in events], BASE_ARROW["distinct_id"]),
        "event": pa.array([e.event for e in events], BASE_ARROW["event"]),
        "time": pa.array([utc(e.time) for e in events], BASE_ARROW["time"]),
        "$receive_time": pa.array([received] * len(events), BASE_ARROW["$receive_time"]),
    }
    pairs = {(str(n), "") for n in pc.unique(columns["event"]).to_pylist()}
    for name, ptype in PROPERTY_TYPES.items():
        values = [e.properties.get(name) for e in events]
        if not any(v is not None for v in values):
            continue
        column = pa.array(values, ARROW_TYPES[ptype])
        columns[name] = column
        carrying = pc.unique(columns["event"].filter(column.is_valid())).to_pylist()
        pairs.update((str(event), name) for event in carrying)
    profiles.register_event_properties(session=session, project_id=project_id, pairs=pairs)
    mirror.enqueue(
        session=session,
        project_id=project_id,
        batch=mirror.WarehouseBatch(events=pa.table(columns)),
        now=now,
    )
