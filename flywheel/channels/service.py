"""Channels: the message log, per-node counts, in-app slots and the advisor task inbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from flywheel.audit import service as audit
from flywheel.auth import pii, scope
from flywheel.auth.schemas import Principal
from flywheel.channels import catalog, system_events
from flywheel.channels.base import REGISTRY, family_of
from flywheel.channels.models import AdvisorTask, Message, SlotMessage
from flywheel.channels.schemas import (
    AdvisorTaskOut,
    AdvisorTaskPatch,
    ChannelOut,
    MessageOut,
    MessagePage,
    NodeCount,
    SlotCardOut,
    SlotOut,
)
from flywheel.core.clock import utc_naive
from flywheel.core.errors import NotFound
from flywheel.identity import service as identity
from flywheel.profiles import service as profiles

#: Identity keys tried, in order, for ``?user=`` when it is not a user id.
USER_KEYS = ("$identity_login_id", "$identity_distinct_id", "$identity_anonymous_id")


def known_channels() -> list[ChannelOut]:
    """Every registered channel adapter."""
    return [
        ChannelOut(
            name=name,
            customer_facing=bool(getattr(REGISTRY[name], "customer_facing", True)),
            family=family_of(name),
        )
        for name in catalog.channel_names()
    ]


def _message_out(m: Message) -> MessageOut:
    return MessageOut.model_validate(m, from_attributes=True)


def _visible(
    session: Session, project_id: int, principal: Principal, user_ids: Sequence[int]
) -> set[int]:
    if scope.is_unrestricted(principal):
        return set(user_ids)
    found = profiles.load_profiles(session=session, project_id=project_id, user_ids=user_ids)
    return {u for u in user_ids if scope.in_scope(principal, found.get(u, {}))}


def list_messages(
    *,
    session: Session,
    project_id: int,
    principal: Principal,
    user_id: int | None = None,
    journey_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> MessagePage:
    """The message log, newest first, limited to customers in the principal's data scope."""
    stmt = select(Message).where(Message.project_id == project_id)
    if user_id is not None:
        stmt = stmt.where(Message.user_id == user_id)
    if journey_id is not None:
        stmt = stmt.where(Message.journey_id == journey_id)
    if status is not None:
        stmt = stmt.where(Message.status == status)
    stmt = stmt.order_by(Message.id.desc())
    if scope.is_unrestricted(principal):
        rows = session.scalars(stmt.limit(limit).offset(offset)).all()
        return MessagePage(items=[_message_out(m) for m in rows], limit=limit, offset=offset)
    # Scoped: walk the log in chunks, keeping visible customers' messages only.
    kept: list[MessageOut] = []
    skipped = 0
    position = 0
    chunk = max(limit * 4, 200)
    while len(kept) < limit:
        rows = session.scalars(stmt.limit(chunk).offset(position)).all()
        if not rows:
            break
        position += len(rows)
        visible = _visible(session, project_id, principal, sorted({m.user_id for m in rows}))
        for m in rows:
            if m.user_id not in visible:
                continue
            if skipped < offset:
                skipped += 1
                continue
            kept.append(_message_out(m))
            if len(kept) == limit:
                break
    return MessagePage(items=kept, limit=limit, offset=offset)


def get_message(
    *, session: Session, project_id: int, message_id: int, principal: Principal
) -> MessageOut:
    """One message (:class:`NotFound` when absent or outside the principal's scope)."""
    m = session.get(Message, message_id)
    if m is None or m.project_id != project_id:
        raise NotFound(f"message {message_id} not found")
    if not _visible(session, project_id, principal, [m.user_id]):
        raise NotFound(f"message {message_id} not found")
    return _message_out(m)


def node_counts(*, session: Session, project_id: int, journey_id: int) -> list[NodeCount]:
    """A journey's messages counted by node, status and reason (what the canvas shows)."""
    rows = session.execute(
        select(Message.node_id, Message.status, Message.reason, func.count())
        .where(Message.project_id == project_id, Message.journey_id == journey_id)
        .group_by(Message.node_id, Message.status, Message.reason)
        .order_by(Message.node_id, Message.status, Message.reason)
    ).all()
    return [NodeCount(node_id=n, status=s, reason=r, count=int(c)) for n, s, r, c in rows]


# -- in-app slots -------------------------------------------------------------------------------
def resolve_user(*, session: Session, project_id: int, user: str) -> int:
    """``user`` as a user id, else as a login / distinct / anonymous id (:class:`NotFound`)."""
    if user.isdigit() and identity.user_exists(
        session=session, project_id=project_id, user_id=int(user)
    ):
        return int(user)
    for key in USER_KEYS:
        found = identity.find_user_id(session=session, project_id=project_id, key=key, value=user)
        if found is not None:
            return found
    raise NotFound("unknown customer")


def _card_out(row: SlotMessage) -> SlotCardOut:
    return SlotCardOut(
        message_id=row.message_id,
        slot=row.slot,
        title=row.title,
        body=row.body,
        link=row.link,
        fields=dict(row.fields or {}),
        recommendations=list(row.recommendations or []),
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _mark(
    session: Session,
    project_id: int,
    row: SlotMessage,
    *,
    status: str,
    event: str,
    suffix: str,
    now: datetime,
) -> None:
    """Move the message to ``status`` (never backwards) and stage its system event once."""
    order = ["delivered", "opened", "clicked"]
    session.execute(
        update(Message)
        .where(Message.id == row.message_id, Message.status.in_(order[: order.index(status)]))
        .values(status=status, updated_at=utc_naive(now))
    )
    m = session.get(Message, row.message_id)
    props: dict[str, Any] = {"message_id": row.message_id, "channel": "in_app"}
    if m is not None:
        for name, value in (
            ("journey_id", m.journey_id),
            ("journey_version", m.version_id),
            ("node_id", m.node_id),
            ("variant", m.variant),
        ):
            if value is not None:
                props[name] = value
    system_events.emit(
        session=session,
        project_id=project_id,
        events=[
            system_events.SystemEvent(
                id=f"msg{row.message_id}-{suffix}",
                user_id=row.user_id,
                event=event,
                time=now,
                properties=props,
            )
        ],
        now=now,
    )


def slot_content(
    *, session: Session, project_id: int, slot: str, user: str, now: datetime
) -> SlotOut:
    """The newest unexpired, undismissed card of ``slot`` for the customer; the first showing
    records ``$MessageOpened`` and moves the message to ``opened``."""
    user_id = resolve_user(session=session, project_id=project_id, user=user)
    at = utc_naive(now)
    row = session.scalars(
        select(SlotMessage)
        .where(
            SlotMessage.project_id == project_id,
            SlotMessage.user_id == user_id,
            SlotMessage.slot == slot,
            SlotMessage.dismissed_at.is_(None),
            or_(SlotMessage.expires_at.is_(None), SlotMessage.expires_at > at),
        )
        .order_by(SlotMessage.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return SlotOut(slot=slot, user_id=user_id, card=None)
    if row.shown_at is None:
        row.shown_at = at
        _mark(
            session,
            project_id,
            row,
            status="opened",
            event=system_events.MESSAGE_OPENED,
            suffix="opened",
            now=now,
        )
    session.flush()
    return SlotOut(slot=slot, user_id=user_id, card=_card_out(row))


def _slot_row(session: Session, project_id: int, slot: str, message_id: int) -> SlotMessage:
    row = session.scalar(
        select(SlotMessage).where(
            SlotMessage.project_id == project_id,
            SlotMessage.slot == slot,
            SlotMessage.message_id == message_id,
        )
    )
    if row is None:
        raise NotFound(f"no card {message_id} in slot {slot!r}")
    return row


def slot_click(
    *, session: Session, project_id: int, slot: str, message_id: int, now: datetime
) -> SlotCardOut:
    """Record a click on a card (``$MessageClicked`` once; message → ``clicked``)."""
    row = _slot_row(session, project_id, slot, message_id)
    if row.clicked_at is None:
        row.clicked_at = utc_naive(now)
        row.shown_at = row.shown_at or row.clicked_at
        _mark(
            session,
            project_id,
            row,
            status="clicked",
            event=system_events.MESSAGE_CLICKED,
            suffix="clicked",
            now=now,
        )
    session.flush()
    return _card_out(row)


def slot_dismiss(
    *, session: Session, project_id: int, slot: str, message_id: int, now: datetime
) -> SlotCardOut:
    """The customer closed the card: it is not shown again."""
    row = _slot_row(session, project_id, slot, message_id)
    if row.dismissed_at is None:
        row.dismissed_at = utc_naive(now)
    session.flush()
    return _card_out(row)


# -- advisor tasks ------------------------------------------------------------------------------
def _task_scope(stmt: Any, principal: Principal) -> Any:
    if principal.advisor_id is not None:
        stmt = stmt.where(AdvisorTask.advisor_id == principal.advisor_id)
    if principal.branch_scope is not None:
        stmt = stmt.where(AdvisorTask.branch.in_(list(principal.branch_scope)))
    return stmt


def _task_out(row: AdvisorTask, customer: dict[str, Any]) -> AdvisorTaskOut:
    out = AdvisorTaskOut.model_validate(row, from_attributes=True)
    out.customer = customer
    return out


def list_tasks(
    *,
    session: Session,
    project_id: int,
    principal: Principal,
    status: str | None = None,
    reveal: bool = False,
    now: datetime,
    limit: int = 100,
    offset: int = 0,
) -> list[AdvisorTaskOut]:
    """Tasks the principal may see: an advisor their own, a branch manager the branch's;
    customers' PII masked unless ``reveal`` (needs ``pii:view``; audited)."""
    show = pii.authorize_reveal(principal, reveal=reveal)
    stmt = _task_scope(select(AdvisorTask).where(AdvisorTask.project_id == project_id), principal)
    if status is not None:
        stmt = stmt.where(AdvisorTask.status == status)
    rows = session.scalars(
        stmt.order_by(AdvisorTask.due_at, AdvisorTask.id).limit(limit).offset(offset)
    ).all()
    found = profiles.load_profiles(
        session=session, project_id=project_id, user_ids=[r.user_id for r in rows]
    )
    if show and rows:
        pii.audit_reveal(
            session=session,
            principal=principal,
            customer=",".join(f"user_id:{r.user_id}" for r in rows[:20]),
            fields=["name", "mobile"],
            project_id=project_id,
            now=now,
        )
    return [_task_out(r, pii.mask_properties(found.get(r.user_id, {}), reveal=show)) for r in rows]


def _task(session: Session, project_id: int, task_id: int, principal: Principal) -> AdvisorTask:
    row = session.scalar(
        _task_scope(
            select(AdvisorTask).where(
                AdvisorTask.project_id == project_id, AdvisorTask.id == task_id
            ),
            principal,
        )
    )
    if not isinstance(row, AdvisorTask):
        raise NotFound(f"task {task_id} not found")
    return row


def get_task(
    *,
    session: Session,
    project_id: int,
    task_id: int,
    principal: Principal,
    reveal: bool = False,
    now: datetime,
) -> AdvisorTaskOut:
    """One task (:class:`NotFound` outside the principal's scope)."""
    show = pii.authorize_reveal(principal, reveal=reveal)
    row = _task(session, project_id, task_id, principal)
    profile = profiles.get_profile(session=session, project_id=project_id, user_id=row.user_id)
    if show:
        pii.audit_reveal(
            session=session,
            principal=principal,
            customer=f"user_id:{row.user_id}",
            fields=sorted(profile or {}),
            project_id=project_id,
            now=now,
        )
    return _task_out(row, pii.mask_properties(profile or {}, reveal=show))


def update_task(
    *,
    session: Session,
    project_id: int,
    task_id: int,
    patch: AdvisorTaskPatch,
    principal: Principal,
    now: datetime,
) -> AdvisorTaskOut:
    """Change status / outcome / notes; appended to the task history and audited."""
    row = _task(session, project_id, task_id, principal)
    changes = patch.model_dump(exclude_none=True)
    at = utc_naive(now)
    if "status" in changes:
        row.status = changes["status"]
    if "outcome" in changes:
        row.outcome = changes["outcome"]
    if "notes" in changes:
        row.notes = changes["notes"]
    row.updated_at = at
    row.history = [*row.history, {"at": at.isoformat(), "by": principal.actor, **changes}]
    audit.record(
        session=session,
        actor=principal.actor,
        action="advisor.task_updated",
        target=f"advisor_task:{task_id}",
        detail={k: v for k, v in changes.items() if k != "notes"},
        project_id=project_id,
        now=now,
    )
    session.flush()
    profile = profiles.get_profile(session=session, project_id=project_id, user_id=row.user_id)
    return _task_out(row, pii.mask_properties(profile or {}, reveal=False))
