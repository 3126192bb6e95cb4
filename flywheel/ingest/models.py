"""Ingest tables: the durable inbox, rejected records, and ingest keys."""

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
    LargeBinary,
    String,
    Text,
)
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


class WatchedEvent(Base):
    """An event name some live consumer (a published journey, …) wants from the stream.

    The processor copies matching events into :class:`FeedEvent` in the transaction that
    applies them; unwatched events cost nothing.
    """

    __tablename__ = "ingest_watched_events"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    #: Who watches (e.g. ``journeys``); each subscriber replaces its own set.
    subscriber: Mapped[str] = mapped_column(String(32), primary_key=True)
    event: Mapped[str] = mapped_column(String(100), primary_key=True)


class FeedEvent(Base):
    """A live event waiting for its consumer: a queue, deleted in the consumer's transaction.

    Only records applied by the live pipeline (HTTP ingest, API) are fed; bulk history
    imports never trigger live consumers.
    """

    __tablename__ = "ingest_event_feed"
    __table_args__ = (Index("ix_ingest_event_feed_subscriber", "subscriber", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    subscriber: Mapped[str] = mapped_column(String(32), nullable=False)
    event_id: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event: Mapped[str] = mapped_column(String(100), nullable=False)
    #: Event time (UTC, naive).
    time: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    received_at: Mapped[datetime] = utcnow_column()
