"""Auth tables: console users, custom roles and bearer tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store import Base, utcnow_column


class ConsoleUser(Base):
    """A person who signs in to the console or API (not a customer)."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    #: Used to match an OIDC identity to this user when the username claim is absent.
    email: Mapped[str | None] = mapped_column(String(254), nullable=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    #: A built-in role (``flywheel.auth.permissions.ROLES``) or the name of a custom role.
    role: Mapped[str] = mapped_column(String(64), nullable=False)
    #: Branch codes (营业部) the user may see; null = every branch.
    branch_scope: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    #: For advisors: their advisor id; they see only customers assigned to it.
    advisor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    created_at: Mapped[datetime] = utcnow_column()


class CustomRole(Base):
    """A role made by an administrator from fine-grained permissions."""

    __tablename__ = "console_roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    #: Sorted permission names, each one of ``PERMISSIONS``.
    permissions: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = utcnow_column()
    updated_at: Mapped[datetime] = utcnow_column()


class AccessToken(Base):
    """An opaque bearer token, kept as its SHA-256 only.

    ``kind`` is ``session`` (issued by login, console cookie or bearer) or ``api`` (a named,
    longer-lived token a user creates for scripts).
    """

    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(
        String(16), nullable=False, default="session", server_default="session"
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False, default="", server_default="")
    expires_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    revoked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = utcnow_column()
