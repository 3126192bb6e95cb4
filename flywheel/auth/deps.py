"""The one place that decides access for every API route.

Usage in a route: ``principal: Annotated[Principal, Depends(require("segments:write"))]``;
``Depends(signed_in)`` where any signed-in user may call (``/auth/me``, own tokens).

* credentials: ``Authorization: Bearer <token>``, else the console's session cookie;
* no or bad credentials → 401; a role without the permission → 403;
* cookie-authenticated unsafe methods (POST, PUT, PATCH, DELETE) must carry ``X-CSRF-Token``
  equal to the CSRF cookie and to the token derived from the session (403 otherwise); bearer
  calls are exempt (a browser never adds that header by itself).

Each dependency carries the permission it checks in ``required_permission`` so tests (and
tools) can read what a route needs from ``route.dependant``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from flywheel.auth import service
from flywheel.auth.permissions import PERMISSIONS
from flywheel.auth.schemas import Principal
from flywheel.core.errors import Forbidden, Unauthenticated
from flywheel.http.deps import RuntimeDep

SESSION_COOKIE = "flywheel_session"
CSRF_COOKIE = "flywheel_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: ``required_permission`` of :func:`signed_in`: any authenticated user.
AUTHENTICATED = "authenticated"


def csrf_token_for(secret_key: str, session_token: str) -> str:
    """The CSRF token bound to one session (HMAC of the session token under the app secret)."""
    return hmac.new(
        secret_key.encode(), b"csrf|" + session_token.encode(), hashlib.sha256
    ).hexdigest()


def credentials(request: Request) -> tuple[str, bool]:
    """The caller's token and whether it came from the session cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("malformed Authorization header (expected: Bearer <token>)")
        return token.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, True
    raise Unauthenticated("missing bearer token (Authorization: Bearer …)")


def current_token(request: Request) -> str:
    """The raw token of this request (for logout)."""
    return credentials(request)[0]


def current_principal(request: Request, runtime: RuntimeDep) -> Principal:
    token, from_cookie = credentials(request)
    with runtime.db.unit_of_work() as session:
        principal = service.authenticate(session=session, token=token, now=runtime.clock())
    if from_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        cookie = request.cookies.get(CSRF_COOKIE, "")
        expected = csrf_token_for(runtime.settings.secret_key, token)
        if not (sent and hmac.compare_digest(sent, cookie) and hmac.compare_digest(sent, expected)):
            raise Forbidden("missing or wrong X-CSRF-Token for a cookie session")
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def _tag(dependency: Callable[..., Any], permission: str) -> None:
    dependency.required_permission = permission  # type: ignore[attr-defined]


def signed_in(principal: CurrentPrincipal) -> Principal:
    """Any authenticated caller, whatever their role."""
    return principal


_tag(signed_in, AUTHENTICATED)
SignedIn = Annotated[Principal, Depends(signed_in)]


def require(permission: str) -> Callable[[Principal], Principal]:
    """A dependency that yields the caller when their role grants ``permission``.

    Unknown permission names fail at import time, not at request time.
    """
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.can(permission):
            raise Forbidden(f"permission {permission!r} required")
        return principal

    dependency.__name__ = f"require_{permission.replace(':', '_')}"
    _tag(dependency, permission)
    return dependency


def required_permissions(dependant: Any) -> set[str]:
    """Every permission (or :data:`AUTHENTICATED`) a route's dependency tree checks."""
    found: set[str] = set()
    stack = [dependant]
    while stack:
        node = stack.pop()
        marker = getattr(node.call, "required_permission", None)
        if isinstance(marker, str):
            found.add(marker)
        stack.extend(node.dependencies)
    return found
