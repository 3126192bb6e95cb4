"""Audit tables: the hash-chained log and its head (the serialisation point of appends)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store import Base


class AuditEntry(Base):
    """One sensitive act. Append-only: database triggers refuse UPDATE and DELETE.

    ``hash`` is SHA-256 over the canonical JSON of the row's fields and ``prev_hash`` (the hash
    of the row before it), so an edit or a deletion breaks the chain at that row.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_action_at", "action", "at"),
        Index("ix_audit_log_actor_at", "actor", "at"),
        Index("ix_audit_log_at", "at"),
    )

    #: Position in the chain: 1, 2, 3, … without gaps.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str] = mapped_column(String(256), nullable=False)
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Canonical JSON (sorted keys); never personal data.
    detail: Mapped[str] = mapped_column(Text, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditHead(Base):
    """The single row (id 1) holding the last sequence number and hash.

    Every append updates it first, which serialises writers: a row lock on PostgreSQL, the
    database write lock on SQLite. It also lets verification notice rows deleted at the tail.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_hash: Mapped[str] = mapped_column(String(64), nullable=False)
