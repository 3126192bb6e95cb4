"""The live event feed: events some consumer watches, queued for it in the applying transaction.

The embedded bus between ingest and live consumers (journey triggers, waits and goals). A
consumer declares the event names it wants with :func:`watch`; the live pipeline copies each
applied event of a watched name into the feed (same transaction as the inbox delete, so a crash
neither loses nor duplicates); the consumer reads with :func:`take` and deletes with :func:`ack`
in the transaction that acts on them — exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from flywheel.core.clock import utc_naive
from flywheel.ingest.models import FeedEvent, WatchedEvent


@dataclass(frozen=True)
class LiveEvent:
    """One applied event, as the feed carries it."""

    event_id: str
    user_id: int
    event: str
    time: datetime
    properties: dict[str, Any]


@dataclass(frozen=True)
class FedEvent:
    """A feed row handed to a consumer (``id`` is what :func:`ack` takes)."""

    id: int
    project_id: int
    event_id: str
    user_id: int
    event: str
    time: datetime
    properties: dict[str, Any]


def watch(*, session: Session, project_id: int, subscriber: str, events: Iterable[str]) -> None:
    """Replace what ``subscriber`` watches in the project with ``events``."""
    session.execute(
        delete(WatchedEvent).where(
            WatchedEvent.project_id == project_id, WatchedEvent.subscriber == subscriber
        )
    )
    names = sorted(set(events))
    if names:
        session.execute(
            insert(WatchedEvent),
            [{"project_id": project_id, "subscriber": subscriber, "event": n} for n in names],
        )


def watchers(*, session: Session, project_id: int) -> dict[str, set[str]]:
    """Event name → subscribers watching it in the project."""
    rows = session.execute(
        select(WatchedEvent.event, WatchedEvent.subscriber).where(
            WatchedEvent.project_id == project_id
        )
    )
    found: dict[str, set[str]] = {}
    for event, subscriber in rows:
        found.setdefault(event, set()).add(subscriber)
    return found


def publish(*, session: Session, project_id: int, events: Sequence[LiveEvent]) -> int:
    """Queue the watched ones among ``events`` for their subscribers; how many rows queued."""
    if not events:
        return 0
    wanted = watchers(session=session, project_id=project_id)
    if not wanted:
        return 0
    rows = [
        {
            "project_id": project_id,
            "subscriber": subscriber,
            "event_id": e.event_id,
            "user_id": e.user_id,
            "event": e.event,
            "time": utc_naive(e.time),
            "properties": e.properties,
        }
        for e in events
        for subscriber in sorted(wanted.get(e.event, ()))
    ]
    if rows:
        session.execute(insert(FeedEvent), rows)
    return len(rows)


def take(*, session: Session, subscriber: str, limit: int) -> list[FedEvent]:
    """The oldest queued events for ``subscriber`` (locked on PostgreSQL, skipping locked rows)."""
    query = (
        select(FeedEvent)
        .where(FeedEvent.subscriber == subscriber)
        .order_by(FeedEvent.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [
        FedEvent(
            id=row.id,
            project_id=row.project_id,
            event_id=row.event_id,
            user_id=row.user_id,
            event=row.event,
            time=row.time,
            properties=dict(row.properties),
        )
        for row in session.scalars(query)
    ]


def ack(*, session: Session, ids: Sequence[int]) -> None:
    """Delete consumed feed rows (in the consumer's transaction)."""
    for start in range(0, len(ids), 5000):
        session.execute(delete(FeedEvent).where(FeedEvent.id.in_(ids[start : start + 5000])))
