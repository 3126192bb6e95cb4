"""Console users, roles, passwords (argon2), bearer tokens and separation of duties.

Every change of who may do what (users, roles, passwords, tokens) and every login is written
to the audit trail in the same unit of work as the change itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from flywheel.audit import service as audit
from flywheel.auth.models import AccessToken, ConsoleUser, CustomRole
from flywheel.auth.permissions import PERMISSIONS, ROLES
from flywheel.auth.schemas import (
    ApiTokenOut,
    Principal,
    RoleIn,
    RoleOut,
    RoleUpdateIn,
    UserOut,
    UserUpdateIn,
)
from flywheel.core.clock import system_clock, utc_naive
from flywheel.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from flywheel.core.ids import new_secret, sha256_hex

log = structlog.get_logger(__name__)

_hasher = PasswordHasher()
#: Verified against when the user does not exist, so timing does not reveal who exists.
_DUMMY_HASH = _hasher.hash("dummy-password-0")

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SYSTEM_ACTOR = "system"


class SeparationOfDuties(Forbidden):
    code = "separation_of_duties"


# -- passwords and roles ---------------------------------------------------------------------
def check_password_policy(password: str, *, username: str | None = None) -> None:
    """10–256 characters, letters and digits, not containing the username.

    :class:`InvalidInput` naming the rule that failed.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at most {MAX_PASSWORD_LENGTH} characters")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        raise InvalidInput("password must contain both letters and digits")
    if username and len(username) >= 3 and username.lower() in password.lower():
        raise InvalidInput("password must not contain the username")


def role_permissions(*, session: Session, role: str) -> frozenset[str] | None:
    """Permissions of a built-in or custom role; None when no such role exists."""
    builtin = ROLES.get(role)
    if builtin is not None:
        return builtin
    custom = session.scalar(select(CustomRole.permissions).where(CustomRole.name == role))
    return frozenset(custom) if custom is not None else None


def _require_role(session: Session, role: str) -> None:
    if role_permissions(session=session, role=role) is None:
        known = sorted(ROLES) + list(session.scalars(select(CustomRole.name)))
        raise InvalidInput(f"unknown role {role!r}; known: {', '.join(known)}")


def _validate_permissions(permissions: Iterable[str]) -> list[str]:
    chosen = sorted(set(permissions))
    unknown = [p for p in chosen if p not in PERMISSIONS]
    if unknown:
        raise InvalidInput(f"unknown permissions: {', '.join(unknown)}")
    return chosen


def _validate_branches(branch_scope: list[str] | None) -> list[str] | None:
    if branch_scope is None:
        return None
    branches = sorted(set(branch_scope))
    for branch in branches:
        if not branch or len(branch) > 32 or not all(c.isalnum() or c in "_-" for c in branch):
            raise InvalidInput("branch codes are 1-32 letters, digits, '_' or '-'")
    return branches


def _now(now: datetime | None) -> datetime:
    return utc_naive(now if now is not None else system_clock())


# -- users -----------------------------------------------------------------------------------
def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: str,
    branch_scope: list[str] | None = None,
    advisor_id: str | None = None,
    display_name: str = "",
    email: str | None = None,
    actor: str = SYSTEM_ACTOR,
    now: datetime | None = None,
) -> int:
    """Create a console user and return its id (audited as ``user.create``).

    ``role`` must be a built-in or custom role; the password must pass the policy;
    :class:`Conflict` when the username is taken.
    """
    _require_role(session, role)
    check_password_policy(password, username=username)
    if session.scalar(select(ConsoleUser.id).where(ConsoleUser.username == username)):
        raise Conflict(f"user {username!r} already exists")
    at = _now(now)
    user = ConsoleUser(
        username=username,
        display_name=display_name,
        email=email.lower() if email else None,
        password_hash=_hasher.hash(password),
        role=role,
        branch_scope=_validate_branches(branch_scope),
        advisor_id=advisor_id,
        password_changed_at=at,
    )
    session.add(user)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="user.create",
        target=f"console_user:{user.id}",
        detail={
            "username": username,
            "role": role,
            "branch_scope": user.branch_scope,
            "advisor_id": advisor_id,
        },
        now=at,
    )
    log.info("console_user_created", user_id=user.id, role=role)
    return user.id


def _user(session: Session, user_id: int) -> ConsoleUser:
    user = session.get(ConsoleUser, user_id)
    if user is None:
        raise NotFound(f"unknown console user {user_id}")
    return user


def list_users(*, session: Session) -> list[UserOut]:
    """Every console user, by id."""
    return [
        UserOut.model_validate(u)
        for u in session.scalars(select(ConsoleUser).order_by(ConsoleUser.id))
    ]


def get_user(*, session: Session, user_id: int) -> UserOut:
    """One console user; :class:`NotFound` when absent."""
    return UserOut.model_validate(_user(session, user_id))


def update_user(
    *, session: Session, principal: Principal, user_id: int, changes: UserUpdateIn, now: datetime
) -> UserOut:
    """Apply the fields given in ``changes`` (audited as ``user.update`` with old → new).

    Nobody changes their own role, scope, advisor id or active flag (:class:`Forbidden`):
    another administrator must. Deactivation revokes the user's tokens.
    """
    user = _user(session, user_id)
    given = changes.model_fields_set
    privileged = {"role", "branch_scope", "advisor_id", "is_active"} & given
    if user.id == principal.user_id and privileged:
        raise Forbidden("you cannot change your own role, scope or active flag")
    if "role" in given:
        if changes.role is None:
            raise InvalidInput("role cannot be null")
        _require_role(session, changes.role)
    if "is_active" in given and changes.is_active is None:
        raise InvalidInput("is_active cannot be null")
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field in sorted(given):
        value: Any = getattr(changes, field)
        if field == "branch_scope":
            value = _validate_branches(value)
        if field == "email" and value:
            value = str(value).lower()
        if field == "display_name" and value is None:
            value = ""
        old = getattr(user, field)
        if old != value:
            before[field], after[field] = old, value
            setattr(user, field, value)
    if after.get("is_active") is False:
        _revoke_all(session, user.id)
    session.flush()
    if after:
        audit.record(
            session=session,
            actor=principal.actor,
            action="user.update",
            target=f"console_user:{user.id}",
            detail={"username": user.username, "before": before, "after": after},
            now=now,
        )
        log.info("console_user_updated", user_id=user.id, fields=sorted(after))
    return UserOut.model_validate(user)


def reset_password(
    *, session: Session, principal: Principal, user_id: int, new_password: str, now: datetime
) -> None:
    """Set a new password for another user, unlock them and revoke their tokens (audited)."""
    user = _user(session, user_id)
    if user.id == principal.user_id:
        raise Forbidden("change your own password with POST /api/v1/auth/password")
    _set_password(session, user, new_password, now)
    audit.record(
        session=session,
        actor=principal.actor,
        action="user.password_reset",
        target=f"console_user:{user.id}",
        detail={"username": user.username},
        now=now,
    )


def change_password(
    *,
    session: Session,
    principal: Principal,
    current_password: str,
    new_password: str,
    now: datetime,
) -> None:
    """Change one's own password after checking the current one; revokes every token."""
    user = _user(session, principal.user_id)
    try:
        _hasher.verify(user.password_hash, current_password)
    except (VerificationError, InvalidHashError) as exc:
        raise Forbidden("current password is wrong") from exc
    _set_password(session, user, new_password, now)
    audit.record(
        session=session,
        actor=principal.actor,
        action="user.password_change",
        target=f"console_user:{user.id}",
        detail={},
        now=now,
    )


def _set_password(session: Session, user: ConsoleUser, password: str, now: datetime) -> None:
    check_password_policy(password, username=user.username)
    user.password_hash = _hasher.hash(password)
    user.password_changed_at = utc_naive(now)
    user.failed_logins = 0
    user.locked_until = None
    _revoke_all(session, user.id)
    session.flush()


def _revoke_all(session: Session, user_id: int) -> None:
    session.execute(
        update(AccessToken)
        .where(AccessToken.user_id == user_id, AccessToken.revoked.is_(False))
        .values(revoked=True)
    )


# -- roles -----------------------------------------------------------------------------------
def list_roles(*, session: Session) -> list[RoleOut]:
    """Built-in roles, then custom roles by name."""
    roles = [
        RoleOut(name=name, description="built-in", permissions=sorted(perms), builtin=True)
        for name, perms in ROLES.items()
    ]
    for role in session.scalars(select(CustomRole).order_by(CustomRole.name)):
        roles.append(
            RoleOut(
                name=role.name,
                description=role.description,
                permissions=sorted(role.permissions),
                builtin=False,
            )
        )
    return roles


def create_role(
    *, session: Session, principal: Principal, role_in: RoleIn, now: datetime
) -> RoleOut:
    """Create a custom role from known permissions (audited as ``role.create``).

    :class:`Conflict` when the name is a built-in or existing role; :class:`InvalidInput` for
    unknown permissions.
    """
    if role_in.name in ROLES or session.scalar(
        select(CustomRole.id).where(CustomRole.name == role_in.name)
    ):
        raise Conflict(f"role {role_in.name!r} already exists")
    permissions = _validate_permissions(role_in.permissions)
    at = utc_naive(now)
    role = CustomRole(
        name=role_in.name,
        description=role_in.description,
        permissions=permissions,
        created_at=at,
        updated_at=at,
    )
    session.add(role)
    session.flush()
    audit.record(
        session=session,
        actor=principal.actor,
        action="role.create",
        target=f"role:{role.name}",
        detail={"permissions": permissions},
        now=now,
    )
    return RoleOut(
        name=role.name, description=role.description, permissions=permissions, builtin=False
    )


def _custom_role(session: Session, name: str) -> CustomRole:
    if name in ROLES:
        raise Forbidden(f"built-in role {name!r} cannot be changed")
    role = session.scalar(select(CustomRole).where(CustomRole.name == name))
    if role is None:
        raise NotFound(f"unknown role {name!r}")
    return role


def update_role(
    *, session: Session, principal: Principal, name: str, changes: RoleUpdateIn, now: datetime
) -> RoleOut:
    """Change a custom role's permissions or description (audited with old → new).

    Changes apply to every holder on their next request. Nobody changes the role they hold.
    """
    role = _custom_role(session, name)
    if principal.role == name:
        raise Forbidden("you cannot change the role you hold")
    before = sorted(role.permissions)
    if changes.permissions is not None:
        role.permissions = _validate_permissions(changes.permissions)
    if changes.description is not None:
        role.description = changes.description
    role.updated_at = utc_naive(now)
    session.flush()
    audit.record(
        session=session,
        actor=principal.actor,
        action="role.update",
        target=f"role:{role.name}",
        detail={"before": before, "after": sorted(role.permissions)},
        now=now,
    )
    return RoleOut(
        name=role.name,
        description=role.description,
        permissions=sorted(role.permissions),
        builtin=False,
    )


def delete_role(*, session: Session, principal: Principal, name: str, now: datetime) -> None:
    """Delete a custom role nobody holds (:class:`Conflict` otherwise); audited."""
    role = _custom_role(session, name)
    holders = session.scalar(select(func.count()).where(ConsoleUser.role == name)) or 0
    if holders:
        raise Conflict(f"role {name!r} is held by {holders} user(s)")
    session.delete(role)
    session.flush()
    audit.record(
        session=session,
        actor=principal.actor,
        action="role.delete",
        target=f"role:{name}",
        detail={},
        now=now,
    )


# -- login and tokens ------------------------------------------------------------------------
@dataclass(frozen=True)
class LoginOutcome:
    """A token on success; else ``error``. Failures are state too (lock-out counters, audit),
    so the caller commits the outcome either way and then raises on ``error``."""

    token: str = ""
    expires_in: int = 0
    error: str = ""


def _issue(
    session: Session, user_id: int, *, kind: str, name: str, expires_at: datetime
) -> tuple[str, AccessToken]:
    token = new_secret("fwt", 32)
    access = AccessToken(
        token_hash=sha256_hex(token),
        user_id=user_id,
        kind=kind,
        name=name,
        expires_at=utc_naive(expires_at),
    )
    session.add(access)
    session.flush()
    return token, access


def login(
    *,
    session: Session,
    username: str,
    password: str,
    now: datetime,
    token_minutes: int,
    client_ip: str | None = None,
) -> LoginOutcome:
    """Verify the password and issue a session token; audited either way.

    Five failures in a row lock the account for 15 minutes. The error never says whether the
    user exists, and an unknown user costs the same hashing time as a known one.
    """
    now = utc_naive(now)
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.username == username))

    def failed(reason: str, message: str = "wrong username or password") -> LoginOutcome:
        audit.record(
            session=session,
            actor=f"user:{user.username}" if user is not None else "anonymous",
            action="auth.login_failed",
            target=f"console_user:{user.id}" if user is not None else "console_user:unknown",
            detail={"reason": reason, "ip": client_ip},
            now=now,
        )
        log.info("login_failed", reason=reason)
        return LoginOutcome(error=message)

    if user is None or not user.is_active:
        with contextlib.suppress(VerificationError, InvalidHashError):
            _hasher.verify(_DUMMY_HASH, password)
        return failed("unknown_or_inactive")
    if user.locked_until is not None and user.locked_until > now:
        return failed("locked", "account locked after repeated failures; try again later")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        reason = "wrong_password"
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            reason = "wrong_password_locked"
        session.flush()
        return failed(reason)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    token, _ = _issue(
        session,
        user.id,
        kind="session",
        name="login",
        expires_at=now + timedelta(minutes=token_minutes),
    )
    audit.record(
        session=session,
        actor=f"user:{user.username}",
        action="auth.login",
        target=f"console_user:{user.id}",
        detail={"ip": client_ip, "method": "password"},
        now=now,
    )
    log.info("login_succeeded", user_id=user.id)
    return LoginOutcome(token=token, expires_in=token_minutes * 60)


def login_external(
    *,
    session: Session,
    username: str | None,
    email: str | None,
    now: datetime,
    token_minutes: int,
    method: str,
    client_ip: str | None = None,
) -> LoginOutcome:
    """Issue a session for an identity vouched for by an external IdP (OIDC).

    The IdP identity maps to an existing, active console user by username, else by email;
    nobody is created on the fly (roles are granted in Flywheel). Audited either way.
    """
    now = utc_naive(now)
    user = None
    if username:
        user = session.scalar(select(ConsoleUser).where(ConsoleUser.username == username))
    if user is None and email:
        # Only an unambiguous email match counts (emails are not unique among console users).
        matches = list(
            session.scalars(select(ConsoleUser).where(ConsoleUser.email == email.lower()).limit(2))
        )
        user = matches[0] if len(matches) == 1 else None
    if user is None or not user.is_active:
        audit.record(
            session=session,
            actor="anonymous",
            action="auth.login_failed",
            target="console_user:unknown",
            detail={"reason": "no_matching_user", "method": method, "ip": client_ip},
            now=now,
        )
        return LoginOutcome(error="no active console user matches this identity")
    token, _ = _issue(
        session,
        user.id,
        kind="session",
        name=method,
        expires_at=now + timedelta(minutes=token_minutes),
    )
    audit.record(
        session=session,
        actor=f"user:{user.username}",
        action="auth.login",
        target=f"console_user:{user.id}",
        detail={"ip": client_ip, "method": method},
        now=now,
    )
    return LoginOutcome(token=token, expires_in=token_minutes * 60)


def authenticate(*, session: Session, token: str, now: datetime) -> Principal:
    """The principal behind a bearer token; :class:`Unauthenticated` if invalid or expired.

    The role is resolved on every call, so role and permission changes apply at once. An
    advisor without an advisor id sees no customer at all (fail closed).
    """
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
    branch_scope = tuple(user.branch_scope) if user.branch_scope is not None else None
    if user.role == "advisor" and not user.advisor_id:
        branch_scope = ()
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        permissions=role_permissions(session=session, role=user.role) or frozenset(),
        branch_scope=branch_scope,
        advisor_id=user.advisor_id,
    )


def logout(*, session: Session, principal: Principal, token: str, now: datetime) -> None:
    """Revoke the token the caller used (audited as ``auth.logout``)."""
    revoke(session=session, token=token)
    audit.record(
        session=session,
        actor=principal.actor,
        action="auth.logout",
        target=f"console_user:{principal.user_id}",
        detail={},
        now=now,
    )


def revoke(*, session: Session, token: str) -> None:
    """Revoke one token by its clear value (no-op when unknown)."""
    access = session.scalar(select(AccessToken).where(AccessToken.token_hash == sha256_hex(token)))
    if access is not None:
        access.revoked = True
        session.flush()


def _token_out(access: AccessToken, token: str | None = None) -> ApiTokenOut:
    return ApiTokenOut(
        id=access.id,
        name=access.name,
        kind=access.kind,
        expires_at=access.expires_at,
        revoked=access.revoked,
        created_at=access.created_at,
        token=token,
    )


def create_api_token(
    *, session: Session, principal: Principal, name: str, days: int, now: datetime
) -> ApiTokenOut:
    """A named API token for the caller, with the caller's role (audited; shown once)."""
    token, access = _issue(
        session,
        principal.user_id,
        kind="api",
        name=name,
        expires_at=utc_naive(now) + timedelta(days=days),
    )
    audit.record(
        session=session,
        actor=principal.actor,
        action="auth.token_issued",
        target=f"access_token:{access.id}",
        detail={"name": name, "days": days},
        now=now,
    )
    return _token_out(access, token)


def list_api_tokens(*, session: Session, principal: Principal) -> list[ApiTokenOut]:
    """The caller's API tokens (never their values)."""
    rows = session.scalars(
        select(AccessToken)
        .where(AccessToken.user_id == principal.user_id, AccessToken.kind == "api")
        .order_by(AccessToken.id)
    )
    return [_token_out(a) for a in rows]


def revoke_api_token(
    *, session: Session, principal: Principal, token_id: int, now: datetime
) -> None:
    """Revoke one of the caller's own tokens; :class:`NotFound` for anyone else's."""
    access = session.get(AccessToken, token_id)
    if access is None or access.user_id != principal.user_id or access.kind != "api":
        raise NotFound(f"unknown token {token_id}")
    access.revoked = True
    session.flush()
    audit.record(
        session=session,
        actor=principal.actor,
        action="auth.token_revoked",
        target=f"access_token:{access.id}",
        detail={"name": access.name},
        now=now,
    )


# -- separation of duties --------------------------------------------------------------------
def ensure_not_author(principal: Principal, author_user_id: int | None) -> None:
    """Refuse an approval (or publish) by the person who created the thing approved.

    Content and journeys call this before ``approve``/``publish``: whoever created a journey
    or content cannot approve it. :class:`SeparationOfDuties` (HTTP 403) when
    ``principal`` is the author.
    """
    if author_user_id is not None and principal.user_id == author_user_id:
        raise SeparationOfDuties("separation of duties: the author cannot approve their own work")
