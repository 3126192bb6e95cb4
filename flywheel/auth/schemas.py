"""Auth values: the principal every service receives, and the API's inputs and answers.

Every input model forbids unknown fields (mass assignment: a request cannot smuggle in
``role``, ``is_active`` or ``permissions`` where they are not expected).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
ROLE_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
BRANCH_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"


@dataclass(frozen=True)
class Principal:
    """Who is calling, with what they may do and which customers they may see.

    ``branch_scope`` None means every branch; ``advisor_id`` set means only that advisor's
    customers. Services receive the principal and apply the scope themselves.
    """

    user_id: int
    username: str
    role: str
    permissions: frozenset[str]
    branch_scope: tuple[str, ...] | None = None
    advisor_id: str | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"user:{self.username}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    #: Also set an HttpOnly session cookie (console); cookie calls then need ``X-CSRF-Token``.
    session_cookie: bool = False


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    #: Set when a session cookie was issued: send it as ``X-CSRF-Token`` on unsafe methods.
    csrf_token: str | None = None


class MeOut(BaseModel):
    username: str
    role: str
    permissions: list[str]
    branch_scope: list[str] | None
    advisor_id: str | None


class PasswordChangeIn(_Strict):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class ApiTokenIn(_Strict):
    name: str = Field(min_length=1, max_length=100)
    days: int = Field(default=90, ge=1, le=366)


class ApiTokenOut(BaseModel):
    id: int
    name: str
    kind: str
    expires_at: datetime
    revoked: bool
    created_at: datetime
    #: Only in the answer that creates it; kept hashed afterwards.
    token: str | None = None


class UserCreateIn(_Strict):
    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=1, max_length=256)
    role: str = Field(pattern=ROLE_PATTERN)
    display_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    branch_scope: list[str] | None = Field(default=None, max_length=200)
    advisor_id: str | None = Field(default=None, max_length=64, pattern=BRANCH_PATTERN)


class UserUpdateIn(_Strict):
    """Fields left out are unchanged; ``branch_scope: null`` explicitly means every branch."""

    display_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    role: str | None = Field(default=None, pattern=ROLE_PATTERN)
    branch_scope: list[str] | None = Field(default=None, max_length=200)
    advisor_id: str | None = Field(default=None, max_length=64, pattern=BRANCH_PATTERN)
    is_active: bool | None = None


class PasswordResetIn(_Strict):
    new_password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    email: str | None
    role: str
    branch_scope: list[str] | None
    advisor_id: str | None
    is_active: bool
    locked_until: datetime | None
    created_at: datetime


class RoleIn(_Strict):
    name: str = Field(pattern=ROLE_PATTERN)
    description: str = Field(default="", max_length=500)
    permissions: list[str] = Field(max_length=100)


class RoleUpdateIn(_Strict):
    description: str | None = Field(default=None, max_length=500)
    permissions: list[str] | None = Field(default=None, max_length=100)


class RoleOut(BaseModel):
    name: str
    description: str
    permissions: list[str]
    builtin: bool


class PermissionOut(BaseModel):
    name: str
    description: str
