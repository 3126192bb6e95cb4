"""Ingest tables: the durable inbox, rejected records, and ingest keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store import Base, utcnow_column


class InboxRecord(Base):
    """An accepted, validated record waiting for the processor.

    Written in the same transaction that acknowledges the HTTP request (a 2xx means it is
    here); the processor deletes it in the transaction that applies it.
    """

    __tablename__ = "ingest_inbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    #: ``IngestRecord.to_json()``
    record: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    received_at: Mapped[datetime] = utcnow_column()


class Rejection(Base):
    """A record refused alone, with the reason kept (never silently dropped)."""

    __tablename__ = "ingest_rejections"
    __table_args__ = (Index("ix_ingest_rejections_project_time", "project_id", "rejected_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True)
    #: ``sensors``, ``segment``, ``import``, ``processor`` …
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    #: The offending record as received (truncated to 64 KiB).
    raw: Mapped[str] = mapped_column(Text, nullable=False, default="")
    rejected_at: Mapped[datetime] = utcnow_column()


class IngestKey(Base):
    """A project-scoped ingest key, kept as its SHA-256 only."""

    __tablename__ = "ingest_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False, index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    #: First characters of the key, to tell keys apart in listings.
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    label: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    created_at: Mapped[datetime] = utcnow_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
