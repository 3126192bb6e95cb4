"""Shared helpers of the security suites: users of any role without going through login."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from flywheel.auth import service as auth_service
from flywheel.auth.models import AccessToken, ConsoleUser
from flywheel.auth.permissions import ALL
from flywheel.auth.schemas import RoleIn
from flywheel.core.clock import utc_naive
from flywheel.core.ids import new_secret, sha256_hex
from flywheel.runtime import Runtime

PASSWORD = "correct-horse-42"


_PASSWORD_HASH = PasswordHasher().hash(PASSWORD)


def token_for(
    runtime: Runtime,
    username: str,
    role: str,
    *,
    branch_scope: list[str] | None = None,
    advisor_id: str | None = None,
) -> dict[str, str]:
    """Create a user and a session token for it directly.

    No login (no rate limit) and a password hash computed once per session: argon2 is slow on
    purpose, and the walks create many users. ``PASSWORD`` still signs them in.
    """
    with runtime.db.unit_of_work() as session:
        user = ConsoleUser(
            username=username,
            password_hash=_PASSWORD_HASH,
            role=role,
            branch_scope=branch_scope,
            advisor_id=advisor_id,
        )
        session.add(user)
        session.flush()
        user_id = user.id
    return new_token(runtime, user_id)


def new_token(runtime: Runtime, user_id: int) -> dict[str, str]:
    """Bearer headers of a fresh session token of an existing user."""
    token = new_secret("fwt", 32)
    with runtime.db.unit_of_work() as session:
        session.add(
            AccessToken(
                token_hash=sha256_hex(token),
                user_id=user_id,
                expires_at=utc_naive(runtime.clock()) + timedelta(hours=1),
            )
        )
    return {"Authorization": f"Bearer {token}"}


def headers_without(runtime: Runtime, permission: str) -> dict[str, str]:
    """Bearer headers of a user whose custom role has every permission but ``permission``."""
    role = "no_" + permission.replace(":", "_")
    with runtime.db.unit_of_work() as session:
        auth_service.create_role(
            session=session,
            principal=_system(),
            role_in=RoleIn(name=role, permissions=sorted(ALL - {permission})),
            now=runtime.clock(),
        )
    return token_for(runtime, f"u_{role}", role)


def _system() -> auth_service.Principal:
    return auth_service.Principal(user_id=0, username="test-setup", role="admin", permissions=ALL)


def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swap the argon2 cost for a cheap one: the suites create and sign in many users and
    argon2 is slow on purpose. Production parameters are checked in tests/auth/test_admin.py."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(auth_service, "_hasher", cheap)
    monkeypatch.setattr(auth_service, "_DUMMY_HASH", cheap.hash("dummy-password-0"))
