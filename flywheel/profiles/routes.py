"""Customer lookup, customer events, items and the property schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.core.errors import NotFound
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.profiles import customers
from flywheel.profiles import service as profiles
from flywheel.profiles.schemas import CustomerEventsOut, CustomerOut, ItemOut, SchemaOut
from flywheel.projects.deps import ProjectId

router = APIRouter(prefix="/api/v1", tags=["profiles"])

RevealQuery = Annotated[bool, Query(description="show personal data in clear (needs pii:view)")]
CustomerReader = Annotated[Principal, Depends(require("customers:read"))]


@router.get("/users/lookup", response_model=CustomerOut)
def lookup_user(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: CustomerReader,
    key: Annotated[str, Query(min_length=1, max_length=100)],
    value: Annotated[str, Query(min_length=1, max_length=255)],
    project_id: ProjectId,
    reveal: RevealQuery = False,
) -> CustomerOut:
    return customers.lookup_customer(
        session=session,
        warehouse=runtime.warehouse,
        principal=principal,
        project_id=project_id,
        key=key,
        value=value,
        reveal=reveal,
        now=runtime.clock(),
    )


@router.get("/users/{user_id}", response_model=CustomerOut)
def get_user(
    user_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: CustomerReader,
    project_id: ProjectId,
    reveal: RevealQuery = False,
) -> CustomerOut:
    return customers.get_customer(
        session=session,
        warehouse=runtime.warehouse,
        principal=principal,
        project_id=project_id,
        user_id=user_id,
        reveal=reveal,
        now=runtime.clock(),
    )


@router.get("/users/{user_id}/events", response_model=CustomerEventsOut)
def user_events(
    user_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: CustomerReader,
    project_id: ProjectId,
    limit: Annotated[int, Query(ge=1, le=customers.MAX_EVENTS)] = 50,
    reveal: RevealQuery = False,
) -> CustomerEventsOut:
    return customers.customer_events(
        session=session,
        warehouse=runtime.warehouse,
        principal=principal,
        project_id=project_id,
        user_id=user_id,
        limit=limit,
        reveal=reveal,
        now=runtime.clock(),
    )


@router.get("/items/{item_type}/{item_id}", response_model=ItemOut)
def get_item(
    item_type: str,
    item_id: str,
    session: SessionDep,
    _: Annotated[Principal, Depends(require("recommend:read"))],
    project_id: ProjectId,
) -> ItemOut:
    properties = profiles.get_item(
        session=session, project_id=project_id, item_type=item_type, item_id=item_id
    )
    if properties is None:
        raise NotFound(f"no {item_type} item {item_id!r}")
    return ItemOut(item_type=item_type, item_id=item_id, properties=properties)


@router.get("/schema", response_model=SchemaOut)
def get_schema(
    session: SessionDep,
    _: Annotated[Principal, Depends(require("schema:read"))],
    project_id: ProjectId,
) -> SchemaOut:
    return profiles.list_schema(session=session, project_id=project_id)
