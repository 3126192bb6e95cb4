"""Users and roles administration (``admin:users``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from flywheel.auth import service
from flywheel.auth.deps import require
from flywheel.auth.permissions import PERMISSIONS
from flywheel.auth.schemas import (
    PasswordResetIn,
    PermissionOut,
    Principal,
    RoleIn,
    RoleOut,
    RoleUpdateIn,
    UserCreateIn,
    UserOut,
    UserUpdateIn,
)
from flywheel.http.deps import RuntimeDep, SessionDep

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

Admin = Annotated[Principal, Depends(require("admin:users"))]


@router.get("/permissions", response_model=list[PermissionOut])
def list_permissions(_: Admin) -> list[PermissionOut]:
    return [PermissionOut(name=k, description=v) for k, v in PERMISSIONS.items()]


@router.get("/users", response_model=list[UserOut])
def list_users(_: Admin, session: SessionDep) -> list[UserOut]:
    return service.list_users(session=session)


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(
    body: UserCreateIn, principal: Admin, session: SessionDep, runtime: RuntimeDep
) -> UserOut:
    user_id = service.create_user(
        session=session,
        username=body.username,
        password=body.password,
        role=body.role,
        branch_scope=body.branch_scope,
        advisor_id=body.advisor_id,
        display_name=body.display_name,
        email=body.email,
        actor=principal.actor,
        now=runtime.clock(),
    )
    return service.get_user(session=session, user_id=user_id)


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: int, _: Admin, session: SessionDep) -> UserOut:
    return service.get_user(session=session, user_id=user_id)


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(
    user_id: int, body: UserUpdateIn, principal: Admin, session: SessionDep, runtime: RuntimeDep
) -> UserOut:
    return service.update_user(
        session=session, principal=principal, user_id=user_id, changes=body, now=runtime.clock()
    )


@router.post("/users/{user_id}/password", status_code=204)
def reset_password(
    user_id: int, body: PasswordResetIn, principal: Admin, session: SessionDep, runtime: RuntimeDep
) -> Response:
    service.reset_password(
        session=session,
        principal=principal,
        user_id=user_id,
        new_password=body.new_password,
        now=runtime.clock(),
    )
    return Response(status_code=204)


@router.get("/roles", response_model=list[RoleOut])
def list_roles(_: Admin, session: SessionDep) -> list[RoleOut]:
    return service.list_roles(session=session)


@router.post("/roles", response_model=RoleOut, status_code=201)
def create_role(
    body: RoleIn, principal: Admin, session: SessionDep, runtime: RuntimeDep
) -> RoleOut:
    return service.create_role(
        session=session, principal=principal, role_in=body, now=runtime.clock()
    )


@router.patch("/roles/{name}", response_model=RoleOut)
def update_role(
    name: str, body: RoleUpdateIn, principal: Admin, session: SessionDep, runtime: RuntimeDep
) -> RoleOut:
    return service.update_role(
        session=session, principal=principal, name=name, changes=body, now=runtime.clock()
    )


@router.delete("/roles/{name}", status_code=204)
def delete_role(name: str, principal: Admin, session: SessionDep, runtime: RuntimeDep) -> Response:
    service.delete_role(session=session, principal=principal, name=name, now=runtime.clock())
    return Response(status_code=204)
