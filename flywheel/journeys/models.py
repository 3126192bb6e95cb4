"""Journeys (流程画布): the editable draft, immutable published versions, the per-customer state
table the engine advances, and live per-node counters."""

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
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store import Base, utcnow_column

_BIGID = BigInteger().with_variant(Integer, "sqlite")


class Journey(Base):
    """A journey as marketers see it: a draft definition and, once published, a live version."""

    __tablename__ = "journeys"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    #: draft → published → paused → stopped (a stopped journey can be edited and republished)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")
    #: The editable definition (``journeys.schemas.JourneyDefinition`` as JSON).
    draft: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    live_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    author_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: A publication awaiting a second person's approval (four-eyes, a compliance setting):
    #: ``{"by", "by_user_id", "at", "in_flight", "draft_sha"}``; None when nothing waits.
    publish_request: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_by: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    created_at: Mapped[datetime] = utcnow_column()
    updated_at: Mapped[datetime] = utcnow_column()


class JourneyVersion(Base):
    """An immutable published definition. ``state``: live, draining (customers in flight finish
    on it while a newer version takes new entries), closed."""

    __tablename__ = "journey_versions"
    __table_args__ = (UniqueConstraint("journey_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="live")
    published_by: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    published_at: Mapped[datetime] = utcnow_column()
    #: Segment entries already done (``once``) / last recurring run, per entry node id.
    entry_runs: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)


class JourneyState(Base):
    """Where one customer is in one journey occurrence.

    ``status``: active (at ``node_id``, due at ``wake_at``), waiting (for ``wait_event`` until
    ``wake_at``), done (left through an exit), exited (removed: stopped, goal-exit, cancelled).
    """

    __tablename__ = "journey_states"
    __table_args__ = (
        UniqueConstraint("journey_id", "user_id", "occurrence"),
        Index("ix_journey_states_due", "status", "wake_at"),
        Index("ix_journey_states_waiting", "project_id", "wait_event", "user_id"),
        Index("ix_journey_states_version_node", "version_id", "node_id"),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"), nullable=False)
    version_id: Mapped[int] = mapped_column(ForeignKey("journey_versions.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    occurrence: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    node_id: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    wake_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    wait_event: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: A/B split branch or ``control`` (global or node control group); None before any split.
    variant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Node ids visited, ``>``-separated (the full trail is in the warehouse as system events).
    path: Mapped[str] = mapped_column(String(2000), nullable=False, default="")
    #: Per-occurrence data: trigger event properties, recommendations, goal deadlines.
    context: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    entered_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)


class JourneyNodeCount(Base):
    """Live per-node counters (entered, exited, per port …), bumped in the engine's batches."""

    __tablename__ = "journey_node_counts"

    version_id: Mapped[int] = mapped_column(ForeignKey("journey_versions.id"), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
