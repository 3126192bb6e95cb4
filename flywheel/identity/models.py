"""Identity graph tables: customers (users), their identities, per-key rules and conflicts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
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

from flywheel.store import Base

_BIGID = BigInteger().with_variant(Integer, "sqlite")


class IdentityUser(Base):
    """One customer (the Sensors ``user_id``). Ids are stable: merges never rewrite them."""

    __tablename__ = "identity_users"

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)


class Identity(Base):
    """One id of one customer: ``(key, value)`` belongs to exactly one user per project.

    The unique constraint makes a lookup by any id one indexed query.
    """

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("project_id", "key", "value", name="uq_identities_project_key_value"),
        Index("ix_identities_project_user", "project_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(100), nullable=False)
    value: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    bound_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)


class IdentityKeyRule(Base):
    """How one identity key behaves in a project (Sensors IDM 3.0 key settings)."""

    __tablename__ = "identity_keys"
    __table_args__ = (UniqueConstraint("project_id", "key", name="uq_identity_keys_project_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(100), nullable=False)
    #: Lower is stronger: the event goes to the user of the strongest identity.
    priority: Mapped[int] = mapped_column(Integer, nullable=False)
    #: False: a user holds at most one value of this key.
    multi: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: Most values of this key one user may hold (1 when not ``multi``).
    value_limit: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    #: ``refuse`` (keep the old values) or ``replace_oldest`` when ``value_limit`` is reached.
    overflow: Mapped[str] = mapped_column(String(16), nullable=False, default="refuse")
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    label: Mapped[str] = mapped_column(String(200), nullable=False, default="")


class IdentityConflict(Base):
    """A bind that was refused because it would break a key rule; the event was still kept.

    One row per (identity, user the event went to): repeats bump ``occurrences`` so a shared
    device sending thousands of events makes one row, not thousands.
    """

    __tablename__ = "identity_conflicts"
    __table_args__ = (
        UniqueConstraint(
            "project_id", "key", "value", "user_id", name="uq_identity_conflicts_identity_user"
        ),
        Index("ix_identity_conflicts_project_time", "project_id", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(100), nullable=False)
    value: Mapped[str] = mapped_column(String(255), nullable=False)
    #: The user the event was attributed to (and the identity could not join).
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: The user already holding the identity, when that is the reason.
    other_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    last_event_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    occurrences: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
