"""Analytics tables: saved analyses and the dashboards that group them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store import Base, utcnow_column


class Dashboard(Base):
    """A named dashboard of a project (e.g. ``3a3r``); its metrics are saved analyses.

    The row also records that a built-in dashboard's default metrics were seeded, so that a
    metric the user deleted does not come back.
    """

    __tablename__ = "analytics_dashboards"
    __table_args__ = (UniqueConstraint("project_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = utcnow_column()


class SavedAnalysis(Base):
    """An analysis definition (the request body of its kind), editable and re-runnable."""

    __tablename__ = "analytics_saved_analyses"
    __table_args__ = (
        Index("ix_analytics_saved_analyses_project_dashboard", "project_id", "dashboard"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    #: ``events``, ``funnel``, ``retention``, ``distribution`` or ``attribution``
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: key of the dashboard showing it (``3a3r``), if any
    dashboard: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: the dashboard section, e.g. ``awareness`` … ``referral`` for 3A3R
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = utcnow_column()
    updated_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)


class ChannelPrice(Base):
    """What one unit of a channel costs the brokerage (CNY), for journey and campaign reports.

    ``unit``: ``message`` (every message sent is billed once) or ``sms_segment`` (billed per
    70-character SMS segment, 67 per part of a long message).
    """

    __tablename__ = "analytics_channel_prices"
    __table_args__ = (UniqueConstraint("project_id", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    unit: Mapped[str] = mapped_column(String(16), nullable=False, default="message")
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 4), nullable=False)
    updated_by: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
