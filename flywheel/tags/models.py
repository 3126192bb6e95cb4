"""Tag definitions, their runs, and the lineage between tags and segments."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store import Base, utcnow_column


class TagDefinition(Base):
    """A tag (全域标签): how its value is computed (``kind`` + ``spec``) and when (``schedule``).

    Values live in the warehouse table ``p{project}_tag_values``, one dated version per run.
    """

    __tablename__ = "tag_definitions"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False, index=True)
    #: Identifier used in rules (``tag_rule.tag``) and in the profile lookup.
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: rule, metric, first_last, preference, rfm, sql, imported, realtime
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    #: daily, hourly, manual (realtime tags are updated from the event stream)
    schedule: Mapped[str] = mapped_column(String(16), nullable=False, default="daily")
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    created_at: Mapped[datetime] = utcnow_column()
    updated_at: Mapped[datetime] = utcnow_column()
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    last_run_day: Mapped[date | None] = mapped_column(Date(), nullable=True)


class TagRun(Base):
    """One computation of a tag: the dated version it wrote, how many users, how long."""

    __tablename__ = "tag_runs"
    __table_args__ = (Index("ix_tag_runs_tag_started", "tag_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tag_definitions.id", ondelete="CASCADE"), nullable=False
    )
    day: Mapped[date] = mapped_column(Date(), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    seconds: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    #: ok, failed
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    users: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: manual, schedule, api
    trigger: Mapped[str] = mapped_column(String(16), nullable=False, default="manual")


class Lineage(Base):
    """``(source_kind, source_id)`` reads ``(depends_kind, depends_on)``: a tag or segment whose
    rule references a tag (by name) or a segment (by id)."""

    __tablename__ = "rule_lineage"
    __table_args__ = (
        UniqueConstraint(
            "project_id",
            "source_kind",
            "source_id",
            "depends_kind",
            "depends_on",
            name="uq_rule_lineage_edge",
        ),
        Index("ix_rule_lineage_depends", "project_id", "depends_kind", "depends_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    #: tag, segment
    source_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    source_id: Mapped[int] = mapped_column(Integer, nullable=False)
    #: tag, segment
    depends_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    #: tag name or segment id (as text)
    depends_on: Mapped[str] = mapped_column(String(100), nullable=False)
