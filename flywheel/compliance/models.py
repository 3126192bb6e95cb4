"""Compliance tables: project settings, consents, opt-outs, black and white lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store import Base, utcnow_column


class ComplianceSettings(Base):
    """One row per project; absent means the defaults of :mod:`flywheel.compliance.schemas`."""

    __tablename__ = "compliance_settings"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    #: The whole :class:`~flywheel.compliance.schemas.ComplianceSettingsIn` as JSON.
    values: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    updated_by: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    updated_at: Mapped[datetime] = utcnow_column()


class Consent(Base):
    """A customer's consent to be contacted on a channel for a purpose, with its source."""

    __tablename__ = "compliance_consents"
    __table_args__ = (UniqueConstraint("project_id", "user_id", "channel", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: A channel name or ``*`` (every channel).
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    #: ``marketing`` | ``service`` | ``*``
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)
    granted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    #: Where the consent came from (``app_signup``, ``branch_form``, ``api``, ``console`` …).
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(128), nullable=False, default="")


class OptOut(Base):
    """The customer asked not to be contacted (退订). Wins over every other rule."""

    __tablename__ = "compliance_opt_outs"
    __table_args__ = (UniqueConstraint("project_id", "user_id", "channel", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(128), nullable=False, default="")


class ListEntry(Base):
    """A black- or whitelist entry matching a customer by user id or by an identity value."""

    __tablename__ = "compliance_list_entries"
    __table_args__ = (
        UniqueConstraint("project_id", "kind", "key", "value", "channel"),
        Index("ix_compliance_list_entries_lookup", "project_id", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    #: ``black`` | ``white``
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    #: ``user_id`` or an identity key (``$identity_mobile``, ``$identity_email`` …).
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    value: Mapped[str] = mapped_column(String(256), nullable=False)
    #: A channel name or ``*``.
    channel: Mapped[str] = mapped_column(String(32), nullable=False, default="*")
    note: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    created_by: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    created_at: Mapped[datetime] = utcnow_column()
