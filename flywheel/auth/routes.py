from __future__ import annotations

from fastapi import APIRouter

from flywheel.auth import service
from flywheel.auth.deps import CurrentPrincipal
from flywheel.auth.schemas import LoginIn, MeOut, TokenOut
from flywheel.core.errors import Unauthenticated
from flywheel.http.deps import RuntimeDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login", response_model=TokenOut)
def login(body: LoginIn, runtime: RuntimeDep) -> TokenOut:
    with runtime.db.unit_of_work() as session:
        outcome = service.login(
            session=session,
            username=body.username,
            password=body.password,
            now=runtime.clock(),
            token_minutes=runtime.settings.access_token_minutes,
        )
    if outcome.error:
        raise Unauthenticated(outcome.error)
    return TokenOut(access_token=outcome.token, expires_in=outcome.expires_in)


@router.get("/me", response_model=MeOut)
def me(principal: CurrentPrincipal) -> MeOut:
    return MeOut(
        username=principal.username,
        role=principal.role,
        permissions=sorted(principal.permissions),
        branch_scope=list(principal.branch_scope) if principal.branch_scope is not None else None,
        advisor_id=principal.advisor_id,
    )
