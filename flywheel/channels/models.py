"""The message outbox and the send specs messages point to.

A journey's transition and the messages it produces commit in one transaction; the
dispatcher delivers from here. ``idempotency_key`` is unique: exactly one message per
(journey version, node, customer, occurrence), whatever crashes or replays happen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.auth.crypto import EncryptedJSON
from flywheel.store import Base, utcnow_column

_BIGID = BigInteger().with_variant(Integer, "sqlite")


class SendSpec(Base):
    """What a send node sends, stored once per (journey version, node): channel, purpose,
    content reference or inline template, channel config (secrets encrypted at rest)."""

    __tablename__ = "channel_send_specs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    #: e.g. ``journey:12:v3:send`` — who owns the spec (for stats and clean-up).
    owner: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    fallback_channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: marketing | service (service notices are not held by quiet hours or marketing caps)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False, default="marketing")
    #: Approved content item to render, or None when ``template`` holds inline content.
    content_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Inline content: {"text", "subject", "html", "fields"} (checked at publish).
    template: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    #: Channel options (webhook url/secret, slot name, advisor task script …), encrypted.
    config: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON(), nullable=False)
    #: Risk level (1–5) of the product the message promotes, for the suitability check.
    product_risk_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = utcnow_column()


class Message(Base):
    """One message to one customer, from preparation to its last receipt.

    ``status``: prepared (waiting for ``due_at``; a deferral moves ``due_at`` and keeps the
    reason), sending (claimed by a dispatcher), sent, delivered, opened, clicked, failed,
    blocked (by the compliance gate, ``reason`` says why), dead (retries exhausted).
    """

    __tablename__ = "channel_messages"
    __table_args__ = (
        Index("ix_channel_messages_due", "status", "due_at"),
        Index("ix_channel_messages_journey", "journey_id", "node_id", "status"),
        Index("ix_channel_messages_user", "project_id", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(160), nullable=False, unique=True)
    spec_id: Mapped[int | None] = mapped_column(ForeignKey("channel_send_specs.id"), nullable=True)
    journey_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    variant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The channel tried now (switches to the spec's fallback when the first is unavailable).
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False, default="marketing")
    #: The journey's priority: when several messages compete for a frequency cap, higher wins.
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: Per-message data merged into the template context (recommendations, trigger event …).
    context: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="prepared")
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    due_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class SlotMessage(Base):
    """An in-app card stored for one customer in a named slot (the ``in_app`` channel)."""

    __tablename__ = "channel_slot_messages"
    __table_args__ = (Index("ix_channel_slot_messages_lookup", "project_id", "user_id", "slot"),)

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    #: The outbox message this card came from (unique: one card per message).
    message_id: Mapped[int] = mapped_column(BigInteger, nullable=False, unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    slot: Mapped[str] = mapped_column(String(64), nullable=False)
    title: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    body: Mapped[str] = mapped_column(Text, nullable=False, default="")
    link: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    #: Recommendation scene to fill when the card is shown (``None``: no recommendations).
    recommend_scene: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Recommendations computed when the card was stored (shown when no scene is given).
    recommendations: Mapped[list[Any]] = mapped_column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    shown_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    clicked_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    dismissed_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)


class AdvisorTask(Base):
    """A task for the customer's advisor (the ``advisor`` channel): call, visit, follow up."""

    __tablename__ = "channel_advisor_tasks"
    __table_args__ = (
        Index("ix_channel_advisor_tasks_advisor", "project_id", "advisor_id", "status"),
        Index("ix_channel_advisor_tasks_branch", "project_id", "branch", "status"),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    #: The outbox message this task came from (unique: one task per message).
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    advisor_id: Mapped[str] = mapped_column(String(64), nullable=False)
    branch: Mapped[str | None] = mapped_column(String(64), nullable=True)
    title: Mapped[str] = mapped_column(String(256), nullable=False)
    script: Mapped[str] = mapped_column(Text, nullable=False, default="")
    due_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    #: open | in_progress | done | cancelled
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    notes: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: [{"at", "by", "status", "outcome", "notes"}] oldest first.
    history: Mapped[list[Any]] = mapped_column(JSON, nullable=False, default=list)
    journey_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)


class ChannelAccount(Base):
    """A project's provider account for one channel (SMS, WeCom, WeChat, JPush, email …).

    ``credentials`` (keys, secrets, tokens) are encrypted at rest and never returned in clear;
    ``options`` hold the rest (sign name, templates, endpoints, rate limits). The enabled
    default account of a (project, channel) is what the dispatcher sends through.
    """

    __tablename__ = "channel_accounts"
    __table_args__ = (
        Index("ux_channel_accounts_name", "project_id", "name", unique=True),
        Index("ix_channel_accounts_channel", "project_id", "channel"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    #: e.g. ``aliyun`` / ``tencent`` for SMS; empty when the channel has one provider.
    provider: Mapped[str] = mapped_column(String(32), nullable=False, default="")
    credentials: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON(), nullable=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    enabled: Mapped[bool] = mapped_column(nullable=False, default=True)
    is_default: Mapped[bool] = mapped_column(nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)


class TrackedLink(Base):
    """A link of a sent message rewritten to ``/l/{code}``: the click is recorded as
    ``$MessageClicked`` (attributed to the message's journey, node and variant), then the
    customer is redirected to ``url`` — the only place the code can lead."""

    __tablename__ = "channel_tracked_links"
    __table_args__ = (Index("ix_channel_tracked_links_message", "message_id"),)

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    message_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    journey_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    variant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    clicks: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    first_clicked_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
