"""Writing a batch: states, messages, system events and counters in one transaction."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from prometheus_client import Counter as PromCounter
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from flywheel.channels import outbox, system_events
from flywheel.channels.system_events import SystemEvent
from flywheel.core.clock import utc_naive
from flywheel.ingest import pipeline as ingest_pipeline
from flywheel.journeys.batch import Batch, Cursor, path_text
from flywheel.journeys.models import JourneyNodeCount
from flywheel.store import bulk
from flywheel.tags import service as tags
from flywheel.warehouse import Warehouse

#: Columns that identify a new state.
_KEYS = ("project_id", "journey_id", "version_id", "user_id", "occurrence")
#: State columns a batch sets on every state it writes, new or moved.
_MOVING = ("node_id", "status", "wake_at", "wait_event", "variant", "path", "context")

PREPARED = PromCounter("flywheel_journey_messages_prepared_total", "Messages put in the outbox")


def write(session: Session, batch: Batch, warehouse: Warehouse) -> None:
    """Write what ``batch`` produced in the caller's transaction: new and moved states, profile
    properties, outbox messages (a key already there never makes a second message), system
    events, node counters and warehouse tag values."""
    loaded = batch.loaded
    at = utc_naive(batch.now)
    new = [c for c in batch.settled if c.state_id is None]
    old = [c for c in batch.settled if c.state_id is not None]
    connection = session.connection()
    stamp = bulk.db_datetime(connection, at)
    empty = bulk.db_json({})

    def when(moment: datetime | None) -> Any:
        return stamp if moment == at else bulk.db_datetime(connection, moment)

    def moving(c: Cursor) -> tuple[Any, ...]:
        """The values of :data:`_MOVING` for ``c``."""
        return (
            c.node_id,
            c.status,
            when(c.wake_at),
            c.wait_event,
            c.variant,
            path_text(c.path),
            bulk.db_json(c.context) if c.context else empty,
        )

    bulk.insert(
        connection,
        "journey_states",
        (*_KEYS, *_MOVING, "entered_at", "updated_at"),
        [
            (
                loaded.project_id,
                loaded.journey_id,
                loaded.version_id,
                c.user_id,
                c.occurrence,
                *moving(c),
                when(c.entered_at),
                stamp,
            )
            for c in new
        ],
    )
    bulk.update_by_id(
        connection,
        "journey_states",
        ("version_id", *_MOVING, "updated_at"),
        [(loaded.version_id, *moving(c), stamp, c.state_id) for c in old],
    )
    if batch.properties:
        ingest_pipeline.set_profile_properties(
            session=session,
            project_id=loaded.project_id,
            values=batch.properties,
            now=batch.now,
        )
    ids = outbox.enqueue(
        session=session, project_id=loaded.project_id, messages=batch.messages, now=batch.now
    )
    for message in batch.messages:
        message_id = ids.get(message.key)
        if message_id is None:
            continue  # already in the outbox: never a second message
        assert message.node_id is not None
        batch.counts[(message.node_id, "prepared")] += 1
        batch.events.append(
            SystemEvent(
                id=f"msg{message_id}-prepared",
                user_id=message.user_id,
                event=system_events.MESSAGE_PREPARED,
                time=batch.now,
                properties={
                    "message_id": message_id,
                    "journey_id": loaded.journey_id,
                    "journey_version": loaded.number,
                    "node_id": message.node_id,
                    "channel": message.channel,
                    **({"variant": message.variant} if message.variant else {}),
                },
            )
        )
    PREPARED.inc(len(ids))
    system_events.emit(
        session=session, project_id=loaded.project_id, events=batch.events, now=batch.now
    )
    bump(session, loaded.version_id, batch.counts)
    # Warehouse tag writes are idempotent (a set value set again); done before the commit
    # so a failure here rolls the batch back and it is redone.
    for tag, values in batch.tag_values.items():
        tags.set_values(
            warehouse=warehouse,
            project_id=loaded.project_id,
            tag=tag,
            values=values,
            now=batch.now,
        )


def bump(session: Session, version_id: int, counts: Counter[tuple[str, str]]) -> None:
    """Add ``counts`` to the version's node counters (one upsert)."""
    if not counts:
        return
    rows = [
        {"version_id": version_id, "node_id": node, "metric": metric, "count": n}
        for (node, metric), n in counts.items()
    ]
    dialect = session.get_bind().dialect.name
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(JourneyNodeCount)
    stmt = stmt.on_conflict_do_update(
        index_elements=["version_id", "node_id", "metric"],
        set_={"count": JourneyNodeCount.count + stmt.excluded.count},
    )
    session.execute(stmt, rows)
