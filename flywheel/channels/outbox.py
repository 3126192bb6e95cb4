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

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from flywheel.channels.models import Message, SendSpec
from flywheel.core.clock import utc_naive


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


def enqueue(
    *, session: Session, project_id: int, messages: Sequence[NewMessage], now: datetime
) -> dict[str, int]:
    """Insert ``messages`` (skipping keys already in the outbox); key → message id of those
    inserted now."""
    if not messages:
        return {}
    at = utc_naive(now)
    rows = [
        {
            "project_id": project_id,
            "idempotency_key": m.key,
            "spec_id": m.spec_id,
            "journey_id": m.journey_id,
            "version_id": m.version_id,
            "node_id": m.node_id,
            "user_id": m.user_id,
            "variant": m.variant,
            "channel": m.channel,
            "purpose": m.purpose,
            "priority": m.priority,
            "context": m.context,
            "status": "prepared",
            "attempts": 0,
            "due_at": utc_naive(m.due_at) if m.due_at is not None else at,
            "created_at": at,
            "updated_at": at,
        }
        for m in messages
    ]
    dialect = session.get_bind().dialect.name
    ids: dict[str, int] = {}
    for start in range(0, len(rows), 5000):
        chunk = rows[start : start + 5000]
        if dialect == "postgresql":
            stmt: Any = pg_insert(Message).on_conflict_do_nothing(
                index_elements=["idempotency_key"]
            )
        elif dialect == "sqlite":
            stmt = sqlite_insert(Message).on_conflict_do_nothing(index_elements=["idempotency_key"])
        else:  # pragma: no cover - other dialects take the portable path
            stmt = insert(Message)
        result = session.execute(stmt.returning(Message.id, Message.idempotency_key), chunk)
        ids.update({key: int(mid) for mid, key in result})
    return ids


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
