from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field


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


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    username: str
    role: str
    permissions: list[str]
    branch_scope: list[str] | None
    advisor_id: str | None
