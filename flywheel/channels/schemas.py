"""Channels API values: the message log, in-app slot cards, advisor tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChannelOut(BaseModel):
    name: str
    customer_facing: bool
    #: What compliance rules may name for it as well (``wechat`` for ``wechat_template``).
    family: str


class MessageOut(BaseModel):
    id: int
    idempotency_key: str
    user_id: int
    journey_id: int | None
    version_id: int | None
    node_id: str | None
    variant: str | None
    channel: str
    purpose: str
    priority: int
    status: str
    reason: str | None
    attempts: int
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    provider_message_id: str | None
    last_error: str | None


class MessagePage(BaseModel):
    items: list[MessageOut]
    limit: int
    offset: int


class NodeCount(BaseModel):
    """Messages of one journey node by status and reason (blocks are counted on the node)."""

    node_id: str | None
    status: str
    reason: str | None
    count: int


class SlotCardOut(BaseModel):
    message_id: int
    slot: str
    title: str
    body: str
    link: str | None
    fields: dict[str, Any]
    recommendations: list[Any]
    created_at: datetime
    expires_at: datetime | None


class SlotOut(BaseModel):
    slot: str
    user_id: int
    #: The newest unexpired, undismissed card (None: nothing to show now).
    card: SlotCardOut | None


class AdvisorTaskOut(BaseModel):
    id: int
    user_id: int
    advisor_id: str
    branch: str | None
    title: str
    script: str
    due_at: datetime | None
    status: str
    outcome: str | None
    notes: str
    history: list[Any]
    journey_id: int | None
    node_id: str | None
    created_at: datetime
    updated_at: datetime
    #: The customer's profile (PII masked unless the caller has ``pii:view`` and asked).
    customer: dict[str, Any] = Field(default_factory=dict)


class AdvisorTaskPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "in_progress", "done", "cancelled"] | None = None
    outcome: str | None = Field(default=None, max_length=64)
    notes: str | None = Field(default=None, max_length=10_000)
