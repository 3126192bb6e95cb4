"""Content items (素材), their versions under review, review history and the phrase list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store import Base, utcnow_column


class ContentItem(Base):
    """A material or channel template; what is sent is its approved version."""

    __tablename__ = "content_items"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    #: text, image, link, landing_page, product_card, template
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    #: sms, wechat, push, email, in_app; None for a plain material
    channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    author_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    created_at: Mapped[datetime] = utcnow_column()
    updated_at: Mapped[datetime] = utcnow_column()
    #: The version sent today (stays until a newer version is approved).
    approved_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ContentVersion(Base):
    """One version of an item: draft → submitted → approved / rejected."""

    __tablename__ = "content_versions"
    __table_args__ = (
        UniqueConstraint("item_id", "number"),
        Index("ix_content_versions_project_status", "project_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id"), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")
    subject: Mapped[str] = mapped_column(Text, nullable=False, default="")
    body: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: Channel fields (WeChat template keys, card fields such as risk_level, url, image).
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    #: ``"user.name" → "客户"``: what a missing variable renders as.
    fallbacks: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    author_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    author: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    created_at: Mapped[datetime] = utcnow_column()
    updated_at: Mapped[datetime] = utcnow_column()
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    decision_comment: Mapped[str] = mapped_column(Text, nullable=False, default="")


class ContentReviewEvent(Base):
    """Approval history, kept forever: submitted, approved, rejected (with comment)."""

    __tablename__ = "content_review_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("content_versions.id"), nullable=False, index=True
    )
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    comment: Mapped[str] = mapped_column(Text, nullable=False, default="")
    at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)


class ContentPhrase(Base):
    """An entry of the compliance phrase list (rule: prohibited_claim, risk_warning, trigger)."""

    __tablename__ = "content_phrases"
    __table_args__ = (UniqueConstraint("project_id", "rule", "phrase"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False, index=True)
    rule: Mapped[str] = mapped_column(String(32), nullable=False)
    phrase: Mapped[str] = mapped_column(String(200), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    updated_by: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    updated_at: Mapped[datetime] = utcnow_column()
