"""The one place that decides access for every API route.

Usage in a route: ``principal: Annotated[Principal, Depends(require("segments:write"))]``.
No token → 401; a token whose role lacks the permission → 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from flywheel.auth import service
from flywheel.auth.schemas import Principal
from flywheel.core.errors import Forbidden, Unauthenticated
from flywheel.http.deps import RuntimeDep


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing bearer token (Authorization: Bearer …)")
    return token.strip()


def current_principal(request: Request, runtime: RuntimeDep) -> Principal:
    token = _bearer(request)
    with runtime.db.unit_of_work() as session:
        return service.authenticate(session=session, token=token, now=runtime.clock())


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(permission: str) -> Callable[[Principal], Principal]:
    """A dependency that yields the caller when their role grants ``permission``."""

    def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.can(permission):
            raise Forbidden(f"permission {permission!r} required")
        return principal

    dependency.__name__ = f"require_{permission.replace(':', '_')}"
    return dependency
