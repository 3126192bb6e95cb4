"""THE PERMISSION WALK: every /api/v1 route, from the OpenAPI, refuses the unauthenticated
(401) and every role lacking the route's permission (403).

How a route's permission is found: ``require(p)`` tags its dependency function with
``required_permission = p`` (``signed_in`` with ``"authenticated"``); the walk reads the tag
from ``route.dependant``'s tree. A route under /api/v1 with no tag and not in
``PUBLIC_ROUTES`` fails the walk, so every route another engineer adds is checked too.

Why 401/403 are not masked by 422: FastAPI resolves dependencies (where access is decided)
before it reports parameter and body validation errors, and a dependency's exception ends the
request at once. The walk sends no body and dummy path values ("1") to prove it: whatever the
route expects, the answer must be 401/403. The refused-role check uses, per permission, a
custom role holding *every other* permission, so it proves that exact permission is needed.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from flywheel.app import create_app
from flywheel.auth.deps import AUTHENTICATED, require, required_permissions
from flywheel.auth.permissions import PERMISSIONS
from flywheel.auth.routes import PUBLIC_ROUTES
from flywheel.http.deps import SessionDep
from flywheel.runtime import Runtime
from tests.security.helpers import headers_without, new_token, token_for

METHODS = ("get", "post", "put", "patch", "delete")


def _api_operations(app: Any) -> list[tuple[str, str, Any]]:
    # iter_route_contexts flattens included routers (with their router-level dependencies).
    routes = {
        (method, route.path): route
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
        for method in route.methods or ()
    }
    operations = []
    for path, item in app.openapi()["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method in METHODS:
            if method in item:
                route = routes.get((method.upper(), path))
                assert route is not None, f"{method.upper()} {path} in OpenAPI but not routed"
                operations.append((method.upper(), path, route))
    return operations


def _undeclared(operations: list[tuple[str, str, Any]]) -> list[str]:
    return [
        f"{m} {p}"
        for m, p, route in operations
        if (m, p) not in PUBLIC_ROUTES and not required_permissions(route.dependant)
    ]


def test_the_walk_notices_a_route_without_permission(runtime: Runtime) -> None:
    app = create_app(runtime=runtime, workers=False)
    forgotten = APIRouter(prefix="/api/v1/forgotten")

    @forgotten.get("/leak")
    def leak(session: SessionDep) -> dict[str, str]:
        return {"everything": "public"}

    guarded = APIRouter(prefix="/api/v1/guarded", dependencies=[Depends(require("tags:read"))])

    @guarded.get("/fine")
    def fine() -> dict[str, str]:
        return {}

    app.include_router(forgotten)
    app.include_router(guarded)
    assert _undeclared(_api_operations(app)) == ["GET /api/v1/forgotten/leak"]


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_api_route_declares_and_enforces_its_permission(runtime: Runtime) -> None:
    app = create_app(runtime=runtime, workers=False)
    operations = _api_operations(app)
    assert len(operations) >= 15, "the walk found suspiciously few routes"
    undeclared = _undeclared(operations)
    assert not undeclared, f"routes without a permission dependency: {undeclared}"
    for method, path in PUBLIC_ROUTES:
        assert any((m, p) == (method, path) for m, p, _ in operations), f"stale public {path}"

    refused_by: dict[str, dict[str, str]] = {}
    token_for(runtime, "walk_admin", "admin")
    admin_id = 1  # the first user of the fresh database
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path, route in operations:
            if (method, path) in PUBLIC_ROUTES:
                continue
            url = _url(path)
            anonymous = client.request(method, url)
            assert anonymous.status_code == 401, f"{method} {path} anonymous: {anonymous.text}"
            forged = client.request(method, url, headers={"Authorization": "Bearer fwt_forged"})
            assert forged.status_code == 401, f"{method} {path} forged token: {forged.text}"
            for permission in required_permissions(route.dependant) - {AUTHENTICATED}:
                assert permission in PERMISSIONS
                if permission not in refused_by:
                    refused_by[permission] = headers_without(runtime, permission)
                refused = client.request(method, url, headers=refused_by[permission])
                assert refused.status_code == 403, f"{method} {path} without {permission}"
                assert permission in refused.json()["message"]
            # A fresh token each time: the walk also calls logout, which revokes the caller's.
            allowed = client.request(method, url, headers=new_token(runtime, admin_id))
            assert allowed.status_code not in (401, 403), f"{method} {path} refused the admin"
