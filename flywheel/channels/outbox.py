"""Putting messages in the outbox: the journey engine's (and any sender's) one call.

Messages are inserted in the caller's transaction with a deterministic idempotency key; a key
already present is skipped (never a second message). Send specs are registered once per
(journey version, node) at publish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from flywheel.channels.models import Message, SendSpec
from flywheel.core.clock import utc_naive
from flywheel.store import bulk


@dataclass
class NewMessage:
    """A message to prepare. ``key`` is the idempotency key (unique in the outbox)."""

    key: str
    user_id: int
    spec_id: int
    channel: str
    purpose: str
    journey_id: int | None = None
    version_id: int | None = None
    node_id: str | None = None
    variant: str | None = None
    priority: int = 0
    context: dict[str, Any] = field(default_factory=dict)
    due_at: datetime | None = None


def register_spec(
    *,
    session: Session,
    project_id: int,
    owner: str,
    channel: str,
    purpose: str,
    content_id: int | None,
    template: dict[str, Any],
    config: dict[str, Any],
    fallback_channel: str | None = None,
    product_risk_level: int | None = None,
) -> int:
    """The id of the send spec named ``owner`` (created on first call, unchanged after)."""
    found = session.scalar(select(SendSpec.id).where(SendSpec.owner == owner))
    if found is not None:
        return int(found)
    spec = SendSpec(
        project_id=project_id,
        owner=owner,
        channel=channel,
        fallback_channel=fallback_channel,
        purpose=purpose,
        content_id=content_id,
        template=template,
        config=config,
        product_risk_level=product_risk_level,
    )
    session.add(spec)
    session.flush()
    return spec.id


_MESSAGE_COLUMNS = (
    "project_id",
    "idempotency_key",
    "spec_id",
    "journey_id",
    "version_id",
    "node_id",
    "user_id",
    "variant",
    "channel",
    "purpose",
    "priority",
    "context",
    "status",
    "attempts",
    "due_at",
    "created_at",
    "updated_at",
)


def enqueue(
    *, session: Session, project_id: int, messages: Sequence[NewMessage], now: datetime
) -> dict[str, int]:
    """Insert ``messages`` (skipping keys already in the outbox); key → message id of those
    inserted now."""
    if not messages:
        return {}
    at = utc_naive(now)
    connection = session.connection()
    stamp = bulk.db_datetime(connection, at)
    empty = bulk.db_json({})
    rows = [
        (
            project_id,
            m.key,
            m.spec_id,
            m.journey_id,
            m.version_id,
            m.node_id,
            m.user_id,
            m.variant,
            m.channel,
            m.purpose,
            m.priority,
            bulk.db_json(m.context) if m.context else empty,
            "prepared",
            0,
            stamp
            if m.due_at is None or m.due_at == now
            else bulk.db_datetime(connection, m.due_at),
            stamp,
            stamp,
        )
        for m in messages
    ]
    # Rows whose key is already there are skipped (ON CONFLICT DO NOTHING: SQLite and
    # PostgreSQL). The ids of the inserted rows: PostgreSQL returns them; SQLite has one
    # writer, whose transaction holds the write lock from the first statement, so they are the
    # ids above the highest id seen after that lock is taken.
    sqlite = bulk.is_sqlite(connection)
    if sqlite:
        connection.exec_driver_sql("UPDATE channel_messages SET id = id WHERE 0")
        before = int(session.scalar(select(func.coalesce(func.max(Message.id), 0))) or 0)
    inserted = bulk.insert(
        connection,
        "channel_messages",
        _MESSAGE_COLUMNS,
        rows,
        skip_conflicts_on="idempotency_key",
        returning=() if sqlite else ("id", "idempotency_key"),
    )
    if sqlite:
        inserted = list(
            session.execute(select(Message.id, Message.idempotency_key).where(Message.id > before))
        )
    return {str(key): int(mid) for mid, key in inserted}


def cancel(*, session: Session, journey_id: int, reason: str, now: datetime) -> int:
    """Withdraw a journey's unsent messages (status ``blocked`` with ``reason``)."""
    result = session.execute(
        update(Message)
        .where(Message.journey_id == journey_id, Message.status == "prepared")
        .values(status="blocked", reason=reason, updated_at=utc_naive(now))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def node_outcomes(
    *, session: Session, journey_id: int, version_id: int | None = None
) -> list[tuple[str, str, str | None, int]]:
    """``(node id, status, reason, count)`` of a journey's messages (one version when given)."""
    query = (
        select(Message.node_id, Message.status, Message.reason, func.count())
        .where(Message.journey_id == journey_id)
        .group_by(Message.node_id, Message.status, Message.reason)
    )
    if version_id is not None:
        query = query.where(Message.version_id == version_id)
    return [(str(n), str(s), r, int(c)) for n, s, r, c in session.execute(query)]


def spec_ids(*, session: Session, owners: dict[str, str]) -> dict[str, int]:
    """Send spec ids by caller key, for ``{key: owner}`` (keys whose spec is missing absent)."""
    if not owners:
        return {}
    found = dict(
        session.execute(
            select(SendSpec.owner, SendSpec.id).where(SendSpec.owner.in_(list(owners.values())))
        ).all()
    )
    return {key: int(found[owner]) for key, owner in owners.items() if owner in found}
