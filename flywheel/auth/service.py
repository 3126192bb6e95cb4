"""Console users, passwords (argon2) and bearer tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.auth.models import AccessToken, ConsoleUser
from flywheel.auth.permissions import ROLES
from flywheel.auth.schemas import Principal
from flywheel.core.clock import utc_naive
from flywheel.core.errors import Conflict, InvalidInput, Unauthenticated
from flywheel.core.ids import new_secret, sha256_hex

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 10
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


def check_password_policy(password: str) -> None:
    """At least 10 characters with letters and digits; :class:`InvalidInput` otherwise."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        raise InvalidInput("password must contain both letters and digits")


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: str,
    branch_scope: list[str] | None = None,
    advisor_id: str | None = None,
    display_name: str = "",
) -> int:
    """Create a console user and return its id. Role must be a known role."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; known: {', '.join(sorted(ROLES))}")
    check_password_policy(password)
    if session.scalar(select(ConsoleUser.id).where(ConsoleUser.username == username)):
        raise Conflict(f"user {username!r} already exists")
    user = ConsoleUser(
        username=username,
        display_name=display_name,
        password_hash=_hasher.hash(password),
        role=role,
        branch_scope=branch_scope,
        advisor_id=advisor_id,
    )
    session.add(user)
    session.flush()
    return user.id


@dataclass(frozen=True)
class LoginOutcome:
    """A token on success; else ``error``. Failures are state too (lock-out counters), so the
    caller commits the outcome either way and then raises on ``error``."""

    token: str = ""
    expires_in: int = 0
    error: str = ""


def login(
    *, session: Session, username: str, password: str, now: datetime, token_minutes: int
) -> LoginOutcome:
    """Verify the password and issue a bearer token.

    Repeated failures lock the account for 15 minutes. The error never says whether the
    user exists.
    """
    now = utc_naive(now)
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.username == username))
    if user is None or not user.is_active:
        return LoginOutcome(error="wrong username or password")
    if user.locked_until is not None and user.locked_until > now:
        return LoginOutcome(error="account locked after repeated failures; try again later")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        session.flush()
        return LoginOutcome(error="wrong username or password")
    user.failed_logins = 0
    user.locked_until = None
    token = new_secret("fwt", 32)
    session.add(
        AccessToken(
            token_hash=sha256_hex(token),
            user_id=user.id,
            expires_at=now + timedelta(minutes=token_minutes),
        )
    )
    session.flush()
    return LoginOutcome(token=token, expires_in=token_minutes * 60)


def authenticate(*, session: Session, token: str, now: datetime) -> Principal:
    """The principal behind a bearer token; :class:`Unauthenticated` if invalid or expired."""
    row = session.execute(
        select(AccessToken, ConsoleUser)
        .join(ConsoleUser, ConsoleUser.id == AccessToken.user_id)
        .where(AccessToken.token_hash == sha256_hex(token))
    ).first()
    if row is None:
        raise Unauthenticated("invalid access token")
    access, user = row
    if access.revoked or access.expires_at <= utc_naive(now) or not user.is_active:
        raise Unauthenticated("access token expired or revoked")
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        permissions=ROLES.get(user.role, frozenset()),
        branch_scope=tuple(user.branch_scope) if user.branch_scope is not None else None,
        advisor_id=user.advisor_id,
    )


def revoke(*, session: Session, token: str) -> None:
    access = session.scalar(select(AccessToken).where(AccessToken.token_hash == sha256_hex(token)))
    if access is not None:
        access.revoked = True
        session.flush()
