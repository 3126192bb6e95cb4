"""Profiles, items, the property schema registry, and the warehouse outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store import Base, utcnow_column

_BIGID = BigInteger().with_variant(Integer, "sqlite")


class Profile(Base):
    """The source of truth of one customer's profile (mirrored to ``p{project}_users``)."""

    __tablename__ = "profiles"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: Property name → JSON value (DATETIME as 'YYYY-MM-DD HH:MM:SS.ffffff', DATE 'YYYY-MM-DD').
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)


class Item(Base):
    """A product or other item (fund, stock, article …); mirrored to ``p{project}_items``."""

    __tablename__ = "items"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    item_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    is_deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)


class SchemaProperty(Base):
    """A property's type, fixed by the first value seen (per project and table kind)."""

    __tablename__ = "schema_properties"
    __table_args__ = (
        UniqueConstraint("project_id", "kind", "name", name="uq_schema_properties_kind_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    #: ``events`` / ``users`` / ``items``
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = utcnow_column()


class SchemaEventProperty(Base):
    """Which properties each event name has been seen with (``property`` '' = the event itself)."""

    __tablename__ = "schema_event_properties"
    __table_args__ = (
        UniqueConstraint("project_id", "event", "property", name="uq_schema_event_properties"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    event: Mapped[str] = mapped_column(String(100), nullable=False)
    property: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    created_at: Mapped[datetime] = utcnow_column()


class WarehouseOutbox(Base):
    """Warehouse rows derived from a committed batch, waiting to be appended.

    Written in the transaction that applies the batch (and deletes its inbox rows), drained
    into the warehouse afterwards and deleted once the warehouse write committed. Draining is
    idempotent (events anti-joined on id, profiles and items upserted), so a crash anywhere
    neither loses nor duplicates.
    """

    __tablename__ = "warehouse_outbox"

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    #: Arrow IPC stream(s), see ``flywheel.profiles.warehouse``.
    payload: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = utcnow_column()
