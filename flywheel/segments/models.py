"""Segment definitions, refresh runs and current memberships."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store import Base, utcnow_column


class Segment(Base):
    """A customer group (圈人). ``mode`` dynamic: recomputed from ``rule`` on schedule; static:
    members frozen (a snapshot of a rule, a file upload, or analysis results)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: rule, tags, upload, analysis
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    #: dynamic, static
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: daily, hourly, manual
    schedule: Mapped[str] = mapped_column(String(16), nullable=False, default="daily")
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    created_at: Mapped[datetime] = utcnow_column()
    updated_at: Mapped[datetime] = utcnow_column()


class SegmentRun(Base):
    """One recomputation: size, who entered, who left."""

    __tablename__ = "segment_runs"
    __table_args__ = (Index("ix_segment_runs_segment_at", "segment_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), nullable=False
    )
    at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    entered: Mapped[int] = mapped_column(Integer, nullable=False)
    left: Mapped[int] = mapped_column(Integer, nullable=False)
    seconds: Mapped[float] = mapped_column(Float, nullable=False)


class SegmentMember(Base):
    """Current membership (mirrors ``p{project}_segment_members`` in the warehouse)."""

    __tablename__ = "segment_members"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
